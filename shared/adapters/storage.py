"""One factory for Table and Queue clients (azure-data-tables, azure-storage-queue).

Locally a connection string (Azurite); in Azure the account's endpoints with a managed
identity (the `AzureWebJobsStorage__accountName` / `__credential` / `__clientId` convention of the
Functions host). Queue messages are base64 text, as the Functions queue trigger expects by default.
"""

from __future__ import annotations

from typing import Any

from azure.core.credentials import TokenCredential
from azure.data.tables import TableClient, TableServiceClient
from azure.storage.queue import (
    LinearRetry,
    QueueClient,
    QueueServiceClient,
    TextBase64DecodePolicy,
    TextBase64EncodePolicy,
)

from shared.settings import StorageSettings

# Azurite's documented well-known development account (not a secret: it is public and local-only).
AZURITE_DEFAULT = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


def _connection_string(value: str) -> str:
    return AZURITE_DEFAULT if value.strip().lower() == "usedevelopmentstorage=true" else value


class StorageClients:
    """Builds Table and Queue clients for one storage account; cheap to call repeatedly."""

    def __init__(
        self,
        settings: StorageSettings,
        *,
        credential: TokenCredential | None = None,
        **client_options: Any,
    ) -> None:
        # azure-storage-queue has its own retry policy (15 s, 18 s, 24 s... by default) and
        # ignores azure-core's backoff options: give it the same short budget as the tables.
        queue_options = dict(client_options)
        if "retry_total" in queue_options:
            queue_options["retry_policy"] = LinearRetry(
                backoff=1, retry_total=int(queue_options.pop("retry_total")), random_jitter_range=1
            )
            queue_options.pop("retry_backoff_factor", None)
        if settings.connection_string:
            conn = _connection_string(settings.connection_string)
            self.tables = TableServiceClient.from_connection_string(conn, **client_options)
            self.queues = QueueServiceClient.from_connection_string(
                conn,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
                **queue_options,
            )
        else:
            if credential is None:
                from azure.identity import ManagedIdentityCredential

                credential = ManagedIdentityCredential(client_id=settings.client_id)
            self.tables = TableServiceClient(
                settings.table_endpoint, credential=credential, **client_options
            )
            self.queues = QueueServiceClient(
                settings.queue_endpoint,
                credential=credential,
                message_encode_policy=TextBase64EncodePolicy(),
                message_decode_policy=TextBase64DecodePolicy(),
                **queue_options,
            )

    def table(self, name: str) -> TableClient:
        return self.tables.get_table_client(name)

    def queue(self, name: str) -> QueueClient:
        # get_queue_client does not carry the service's encode policies over: pass them again.
        return self.queues.get_queue_client(
            name,
            message_encode_policy=TextBase64EncodePolicy(),
            message_decode_policy=TextBase64DecodePolicy(),
        )
