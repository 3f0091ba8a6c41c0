"""The bot's hybrid retrieval as a LangChain retriever, so it composes with LangChain code.

Usage::

    retriever = QABot().as_retriever(k=4)
    docs = retriever.invoke("Why did Putin praise Trump?")   # list[langchain_core.documents.Document]
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict


class QABotRetriever(BaseRetriever):
    bot: Any
    k: int | None = None
    filters: Any = None

    model_config = ConfigDict(arbitrary_types_allowed=True)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        passages = self.bot.retrieve(query, k=self.k, filters=self.filters)
        return [
            Document(page_content=p.text, id=p.chunk_id, metadata={k: v for k, v in p.to_dict().items() if k != "text"})
            for p in passages
        ]
