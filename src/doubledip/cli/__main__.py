import sys

from doubledip.cli import main

sys.exit(main())
