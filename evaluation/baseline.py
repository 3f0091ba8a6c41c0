"""The LangChain tutorial pipeline, measured by the same metrics as qa-bot (``--baseline langchain``).

RecursiveCharacterTextSplitter(1000, 200), the same MiniLM (fp32, as the tutorial's
HuggingFace embeddings would run it), ``Chroma.from_documents``, ``similarity_search(k=4)``,
and the same LLM with a plain "answer from the context and cite it" prompt. Its answers are
scored with the same support checker, but not corrected: what a user would otherwise get.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

from evaluation.metrics import Result, answer_score
from qa_bot import QABot
from qa_bot.citations import CITATION, looks_like_refusal, verify_citations
from qa_bot.embeddings import resolve_model_path
from qa_bot.results import Passage
from qa_bot.schema import ArticleMeta

PROMPT = (
    "Use the following pieces of context to answer the question. Cite the context you used by its number, "
    "like [1]. If you don't know the answer, just say that you don't know.\n\n{context}\n\nQuestion: {question}"
)


class LangChainBaseline:
    def __init__(self, corpus: Path, folder: Path, bot: QABot) -> None:
        from langchain_chroma import Chroma
        from langchain_core.documents import Document
        from langchain_core.embeddings import Embeddings
        from langchain_text_splitters import RecursiveCharacterTextSplitter
        from sentence_transformers import SentenceTransformer

        model = SentenceTransformer(str(resolve_model_path(bot.settings.embedding.model)), device="cpu")

        class MiniLM(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return model.encode(texts, batch_size=32).tolist()

            def embed_query(self, text: str) -> list[float]:
                return self.embed_documents([text])[0]

        self.bot = bot
        began = time.perf_counter()
        rows = [json.loads(line) for line in corpus.read_text().splitlines() if line.strip()]
        docs = [
            Document(page_content=r["text"], metadata={"doc_id": r["doc_id"], "title": r.get("title") or ""})
            for r in rows
        ]
        chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
        self.db = Chroma.from_documents(chunks, MiniLM(), persist_directory=str(folder), collection_name="baseline")
        self.ingest_seconds = time.perf_counter() - began

    def evaluate(self, questions: list[dict], progress: Callable[[], None]) -> list[Result]:
        results = []
        for q in questions:
            began = time.perf_counter()
            top10 = self.db.similarity_search(q["question"], k=10)
            retrieval = time.perf_counter() - began
            docs = top10[:4]
            context = "\n\n".join(f"[{i}] {d.page_content}" for i, d in enumerate(docs, start=1))
            messages = [{"role": "user", "content": PROMPT.format(context=context, question=q["question"])}]
            parts, first = [], None
            for delta in self.bot.generator.stream(messages):
                first = first or time.perf_counter() - began
                parts.append(delta)
            text = "".join(parts)
            refused = looks_like_refusal(text) or not text.strip()
            numbers = {int(n) for m in CITATION.finditer(text) for n in m.group(1).replace(";", ",").split(",")}
            cited = [docs[n - 1].metadata["doc_id"] for n in sorted(numbers) if 1 <= n <= len(docs)]
            passages = [
                Passage(
                    chunk_id=str(i),
                    article=ArticleMeta(doc_id=d.metadata["doc_id"], title=d.metadata.get("title", "")),
                    text=d.page_content,
                    start=0,
                    end=len(d.page_content),
                )
                for i, d in enumerate(docs)
            ]
            checked = (
                verify_citations(
                    text, self.bot.scorer.prepare(passages), self.bot.scorer, self.bot.settings.answer.support_threshold
                )
                if not refused
                else None
            )
            results.append(
                Result.of(
                    q,
                    retrieved=[d.metadata["doc_id"] for d in top10],
                    answer=text,
                    refused=refused,
                    cited=cited,
                    unsupported=len(checked.unsupported) if checked else 0,
                    kept_sentences=len(CITATION.findall(checked.text)) if checked else 0,
                    answer_score=None if refused else answer_score(text, q["answers"], q.get("type") == "factoid"),
                    timings={
                        "retrieval": retrieval,
                        "first_token": first or 0.0,
                        "answer": time.perf_counter() - began,
                    },
                )
            )
            progress()
        return results
