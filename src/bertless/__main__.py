import sys

from bertless.cli.main import main

sys.exit(main())
