"""``python -m actspec`` runs the command line."""

from .cli import main

main()
