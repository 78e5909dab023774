import sys

from freqfeed.cli import main

sys.exit(main())
