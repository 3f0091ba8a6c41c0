"""qa-bot: offline question answering over news articles.

Usage::

    from qa_bot import load_settings
    settings = load_settings("config.yaml")
"""

from qa_bot.settings import Settings, SettingsError, load_settings

__all__ = ["Settings", "SettingsError", "load_settings"]
