"""qa-bot: offline question answering over news articles, with checked citations.

Usage::

    from qa_bot import QABot, load_settings
    bot = QABot(load_settings("config.yaml"))
    answer = bot.ask("Why did Putin praise Trump?")
    print(answer.text, [c.quote for c in answer.citations])
"""

from qa_bot.bot import QABot, QuestionError
from qa_bot.generation import GenerationError
from qa_bot.prompts import REFUSAL
from qa_bot.results import Answer, Citation, EarlyAnswer, Filters, Passage
from qa_bot.settings import Settings, SettingsError, load_settings

__all__ = [
    "REFUSAL",
    "Answer",
    "Citation",
    "EarlyAnswer",
    "Filters",
    "GenerationError",
    "Passage",
    "QABot",
    "QuestionError",
    "Settings",
    "SettingsError",
    "load_settings",
]
