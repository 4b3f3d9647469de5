import sys

from bertless.cli import main

sys.exit(main())
