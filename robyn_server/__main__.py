"""`python -m robyn_server`."""

from robyn_server.cli import main

if __name__ == "__main__":
    main()
