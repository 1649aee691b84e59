"""The checkout the package runs from: default config and key locations are relative to it."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
