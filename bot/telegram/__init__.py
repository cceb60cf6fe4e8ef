"""The Telegram face of Spørg Rådet (python-telegram-bot)."""
