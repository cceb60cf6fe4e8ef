"""`python -m bot`: the terminal chat, or the Telegram bot when a token is configured."""

import sys

from bot.cli import main

if __name__ == "__main__":
    sys.exit(main())
