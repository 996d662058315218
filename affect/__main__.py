"""``python -m affect``: the library's commands (analyze, plot, models, export) as the ``affect``
command runs them. ``serve`` and ``demo`` belong to the server package, which the library never
imports: ``python -m affect_server.cli serve``."""

from affect.cli import main

if __name__ == "__main__":
    raise SystemExit(main(prog="python -m affect"))
