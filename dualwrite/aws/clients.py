"""boto3 clients, made lazily (never at import) and one per thread (boto3 clients are
thread-safe, but a client per worker keeps connection pools and adaptive retry state apart)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient
    from mypy_boto3_lambda import LambdaClient

DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class AwsSettings:
    """Where to send AWS calls. endpoint_url None means real AWS (boto3's own resolution)."""

    endpoint_url: str | None = None
    region: str | None = None
    max_attempts: int = 10
    #: dummy credentials for an emulator when none are configured
    emulator_credentials: bool = False
    #: per-call timeouts, so an unreachable endpoint fails fast and clearly
    connect_timeout: float = 5.0
    read_timeout: float = 60.0
    #: encode and parse the bulk item calls with dualwrite.aws.codec rather than botocore's
    #: model walk (same results, a fraction of the CPU); off only to measure the difference
    fast_codec: bool = True


@dataclass
class Clients:
    """A lazy client factory: one client per service and thread."""

    settings: AwsSettings = field(default_factory=AwsSettings)
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _session: Any = field(default=None, repr=False)

    def shared(self) -> Clients:
        """The same clients, one per service for every thread (boto3 clients are thread-safe):
        for many short-lived worker threads, which would otherwise each make their own."""
        return SharedClients(self)

    def client(self, service: str) -> Any:
        cache: dict[str, Any] | None = getattr(self._local, "cache", None)
        if cache is None:
            cache = {}
            self._local.cache = cache
        if service not in cache:
            cache[service] = self._make(service)
        return cache[service]

    def _make(self, service: str) -> Any:
        import boto3  # lazily: Lambda cold starts and CLI --help stay fast
        from botocore.config import Config

        config = Config(
            retries={"mode": "adaptive", "max_attempts": self.settings.max_attempts},
            # moto does not route account-specific endpoints (DESIGN.md section 5)
            account_id_endpoint_mode="disabled",
            connect_timeout=self.settings.connect_timeout,
            read_timeout=self.settings.read_timeout,
            max_pool_connections=50,
        )
        kwargs: dict[str, Any] = {"config": config}
        if self.settings.endpoint_url:
            kwargs["endpoint_url"] = self.settings.endpoint_url
        if self.settings.emulator_credentials:
            kwargs["aws_access_key_id"] = "testing"
            kwargs["aws_secret_access_key"] = "testing"
        with self._lock:  # a boto3 session is not thread-safe to create clients on
            if self._session is None:  # one session: making one costs 0.1-0.5 s
                session = boto3.session.Session(region_name=self.settings.region or None)
                if session.region_name is None:
                    session = boto3.session.Session(region_name=DEFAULT_REGION)
                self._session = session
            client = self._session.client(service, **kwargs)
        if service == "dynamodb" and self.settings.fast_codec:
            from dualwrite.aws import codec

            codec.install(client.meta.events)
        return client

    @property
    def dynamodb(self) -> DynamoDBClient:
        return self.client("dynamodb")  # type: ignore[no-any-return]

    @property
    def streams(self) -> DynamoDBStreamsClient:
        return self.client("dynamodbstreams")  # type: ignore[no-any-return]

    @property
    def lambda_(self) -> LambdaClient:
        return self.client("lambda")  # type: ignore[no-any-return]

    @property
    def cloudwatch(self) -> CloudWatchClient:
        return self.client("cloudwatch")  # type: ignore[no-any-return]


class SharedClients(Clients):
    """One client per service, taken from `inner` once and shared by every thread."""

    def __init__(self, inner: Clients) -> None:
        super().__init__(inner.settings)
        self._inner = inner
        self._shared: dict[str, Any] = {}
        self._shared_lock = threading.Lock()

    def shared(self) -> Clients:
        return self

    def client(self, service: str) -> Any:
        with self._shared_lock:
            if service not in self._shared:
                self._shared[service] = self._inner.client(service)
            return self._shared[service]
