"""``python -m sturgeon`` is the ``sturgeon`` command."""
from sturgeon.cli import main

main()
