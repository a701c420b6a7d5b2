"""The Dagster job `forget_customer`: the UI's way to take an erasure request (the CLI's is `crm-warehouse forget`).

It names the person by their pseudonymous customer_key, as the marts show it, never by a CRM id: Dagster keeps every
run's configuration in its run storage for good, where a CRM id would outlive the erasure; a customer_key links to
nobody once the person is erased. The request is applied by the next refresh (dagster_project.privacy.erasure).
(No `from __future__ import annotations`: Dagster reads the op's config class from its annotation.)
"""

from dagster import Config, Failure, OpExecutionContext, job, op
from pydantic import Field

from dagster_project.defs.instance import WRITER_POOL
from dagster_project.defs.resources import Warehouse
from dagster_project.privacy import erasure


class ForgetConfig(Config):
    customer_key: str = Field(description="The person's pseudonymous customer_key (16 hexadecimal characters), as in "
                                          "marts.dim_customers; every CRM id merged into that customer is erased.")
    reason: str | None = Field(default=None, description="Why, for the audit table; no personal data "
                                                         "(e.g. 'GDPR art. 17, ticket 4711').")


@op(pool=WRITER_POOL, description="Record a request to erase a customer; the next refresh applies it.")
def record_erasure_request(context: OpExecutionContext, config: ForgetConfig, warehouse: Warehouse) -> str:
    try:
        with warehouse.connect() as con:
            receipt = erasure.request(con, customer_key=config.customer_key, reason=config.reason, via="dagster")
    except erasure.ErasureError as error:
        raise Failure(str(error)) from None
    context.log.info(f"erasure request {receipt.request_id} recorded ({receipt.known_ids} CRM customer id(s)); the "
                     "next full refresh removes the person from every layer and its publication completes it")
    return receipt.request_id


@job(name="forget_customer", description="Erase a customer (right to erasure) from every layer at the next refresh: "
                                         "raw rows, restricted, marts, analytics, published files and exports.")
def forget_customer_job():
    record_erasure_request()
