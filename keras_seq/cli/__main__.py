"""``python -m keras_seq.cli``: the same as the ``keras-seq`` command."""

import sys

from keras_seq.cli import main

if __name__ == "__main__":  # documentation tools import every module; only running it runs the command
    sys.exit(main())
