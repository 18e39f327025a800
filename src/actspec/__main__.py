"""``python -m actspec`` runs the command line."""

import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C while the libraries are still being imported
    print("error: interrupted while starting; nothing was done", file=sys.stderr)
    sys.exit(130)

main()
