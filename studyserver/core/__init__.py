"""The lowest layer: plain helpers every app may use (ARCHITECTURE.md). Imports no other app."""
