import sys

from sanet.cli import main

sys.exit(main())
