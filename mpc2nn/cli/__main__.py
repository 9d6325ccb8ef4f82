"""``python -m mpc2nn.cli``: the ``mpc2nn`` command."""

from ._main import main

raise SystemExit(main())
