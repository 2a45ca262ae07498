"""`python -m hpsearch.search` runs the CLI."""

from hpsearch.search.cli import entry

entry()
