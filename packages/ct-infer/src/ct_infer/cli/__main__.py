"""``python -m ct_infer.cli``: the same as the ``ct-infer`` command."""

from ct_infer.cli import main

main()
