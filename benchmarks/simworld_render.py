"""How fast the procedural simulated world renders a scene (image, masks, depth, labels).

    .venv/bin/python benchmarks/simworld_render.py [--sizes 64,256,640] [--scenes 5]

Prints the median and best seconds per scene at each size, after one warm-up render. Training
and the demo render scenes on the fly, so this is the figure that bounds them on a CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

from generator.simworld import render_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="64,256,640", help="comma-separated square sizes")
    parser.add_argument("--scenes", type=int, default=5, help="scenes timed per size")
    args = parser.parse_args()
    render_scene(0, 64)  # warm-up: imports, caches
    for size in (int(s) for s in args.sizes.split(",")):
        seconds = []
        for seed in range(1, args.scenes + 1):
            start = time.perf_counter()
            render_scene(seed, size)
            seconds.append(time.perf_counter() - start)
        print(f"{size}x{size}: median {statistics.median(seconds):.3f} s, best {min(seconds):.3f} s "
              f"per scene ({args.scenes} scenes)")


if __name__ == "__main__":
    main()
