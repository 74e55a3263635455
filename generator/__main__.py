"""Command line of the flood generator.

    python -m generator train masker|painter --config FILE --data sim|DIR --steps N --size S --out RUN_DIR
    python -m generator evaluate masker|painter --checkpoint C --data DIR|sim [--json]
    python -m generator flood --input IMG [IMG ...] --out DIR [...]   (see generator.flood_cli)
    python -m generator import-climategan --masker DIR|FILE [--painter DIR|FILE] --out OUT
"""

from __future__ import annotations

import importlib
import sys

USAGE = ("usage: python -m generator {train,evaluate,flood,import-climategan} ...  "
         "(add --help after a command)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "train":
        from generator.train import main as train_main

        return train_main(rest)
    if command == "evaluate":
        from generator.evaluate import main as evaluate_main

        return evaluate_main(rest)
    if command == "flood":
        try:
            flood_cli = importlib.import_module("generator.flood_cli")
        except ModuleNotFoundError as error:
            if error.name != "generator.flood_cli":
                raise
            print("the 'flood' command is not available: generator/flood_cli.py is not installed",
                  file=sys.stderr)
            return 2
        return int(flood_cli.main(rest) or 0)
    if command == "import-climategan":
        from generator.climategan import main as import_main

        return import_main(rest)
    print(f"unknown command {command!r}\n{USAGE}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
