"""``python -m ct_train`` (what ``torchrun -m ct_train train ...`` runs)."""

from ct_train.cli import main

main()
