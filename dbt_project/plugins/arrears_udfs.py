"""dbt-duckdb plugin: registers the pseudonymisation UDF on every warehouse connection.

`arrears_customer_key(customer_id VARCHAR) -> VARCHAR` is the lowercase hex
HMAC-SHA256 of the UTF-8 customer_id keyed with env ARREARS_PII_KEY
(business_rules.md section 0). When ARREARS_PII_KEY is unset the development key
is used, with a warning. Vectorised: one Python call per Arrow batch.

Loaded from profiles.yml (`plugins: [{module: arrears_udfs}]`, with `module_paths`
pointing at this folder); dbt-duckdb imports the module and instantiates `Plugin`.
"""

import hashlib
import hmac
import logging
import os

import pyarrow as pa
from dbt.adapters.duckdb.plugins import BasePlugin

DEV_PII_KEY = "arrears-development-key-not-for-production"
UDF_NAME = "arrears_customer_key"

log = logging.getLogger("arrears")


def pii_key() -> bytes:
    key = os.environ.get("ARREARS_PII_KEY")
    if not key:
        log.warning("ARREARS_PII_KEY is not set: customer keys use the DEVELOPMENT key.")
        key = DEV_PII_KEY
    return key.encode("utf-8")


def customer_key(value: str, key: bytes) -> str:
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def make_udf(key: bytes):
    def arrears_customer_key(ids: pa.Array) -> pa.Array:
        return pa.array(
            [None if v is None else customer_key(v, key) for v in ids.to_pylist()], type=pa.string()
        )

    return arrears_customer_key


class Plugin(BasePlugin):
    def initialize(self, plugin_config):
        self.key = pii_key()

    def configure_connection(self, conn):
        from duckdb.sqltypes import VARCHAR

        try:
            conn.remove_function(UDF_NAME)
        except Exception:
            pass
        conn.create_function(UDF_NAME, make_udf(self.key), [VARCHAR], VARCHAR, type="arrow",
                             side_effects=False)
