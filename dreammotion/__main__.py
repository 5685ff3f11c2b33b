import sys

from dreammotion.cli import main

sys.exit(main())
