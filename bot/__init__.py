"""Discord bot and offline console over the GAN generation service.

Run it with `python -m bot` or `gan-bot`; see `bot.__main__` for the options
and `.env.example` for the settings.
"""
