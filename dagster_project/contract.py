"""The raw export contract: which entities a CRM export may hold, their canonical columns and accepted synonyms.

This module is the single definition shared by ingestion (header matching), the sample generator (what it
writes), the dbt sources (``dbt/models/staging/crm/_crm__sources.yml`` lists the same columns) and the docs
(``docs/export_contract.md`` is checked against it by a test).

Raw tables keep every value as text exactly as delivered; typing and standardisation happen in dbt staging so
that one set of macros (unit-tested in dbt) defines how a date, an amount or a phone number is read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    name: str
    description: str
    synonyms: tuple[str, ...] = ()
    # How ingestion reads the column before dbt types it: "date" columns are interpreted per file by evidence over
    # the whole column (dagster_project.ingest.values), "amount" and "number" columns follow the file's decimal mark.
    kind: str = "text"
    # Personal data: its values never appear in a message, a log or the BI-facing quarantine.
    personal: bool = False


@dataclass(frozen=True)
class Entity:
    name: str
    description: str
    columns: tuple[Column, ...]
    # Columns a file must carry for any of its rows to be usable; a file without them is rejected whole.
    required: tuple[str, ...] = ()
    file_synonyms: tuple[str, ...] = ()
    key: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


def _c(name: str, description: str, *synonyms: str, kind: str = "text", personal: bool = False) -> Column:
    return Column(name, description, synonyms, kind, personal)


ORDER_ID_SYNONYMS = ("orderid", "order_no", "order_number", "invoiceno", "invoice_no", "invoice_number", "invoice_id", "invoice", "订单号", "订单编号")
BUYER_SYNONYMS = ("cust_id", "customerid", "client_id", "buyer_id", "客户id", "客户编号")
ORDER_DATE_SYNONYMS = ("order_datetime", "ordered_at", "order_time", "date", "created_at", "purchase_date",
                       "order_purchase_timestamp", "invoicedate", "invoice_date", "下单时间", "订单日期")

UPDATED_AT = _c("updated_at", "When the CRM last changed this record; the newest version wins.",
                "last_modified", "modified_at", "last_updated", "update_time", "更新时间", kind="date")

ENTITIES: tuple[Entity, ...] = (
    Entity(
        "customers",
        "One row per customer record (possibly several ids for one person, and several versions per id).",
        (
            _c("customer_id", "CRM customer id.", "cust_id", "customerid", "client_id", "contact_id", "客户id", "客户编号",
               personal=True),
            _c("person_id", "The person behind the customer id, where the CRM gives each order or account its own customer "
               "id (a marketplace's customer_unique_id): ids sharing it are one customer.", "customer_unique_id",
               "unique_customer_id", "global_customer_id", "person_key", personal=True),
            _c("name", "Full name.", "full_name", "customer_name", "contact_name", "姓名", "客户名称", personal=True),
            _c("email", "E-mail address.", "email_address", "e_mail", "mail", "邮箱", "电子邮件", personal=True),
            _c("phone", "Phone number in any format.", "phone_number", "mobile", "tel", "telephone", "cell", "手机", "电话", personal=True),
            _c("gender", "M / F / other; 男 / 女 accepted.", "sex", "性别"),
            _c("birth_date", "Date of birth.", "birthday", "dob", "date_of_birth", "birthdate", "生日", "出生日期", kind="date",
               personal=True),
            _c("city", "City.", "town", "customer_city", "城市"),
            _c("region", "Province, state or region.", "province", "state", "state_province", "customer_state", "省份", "地区"),
            _c("country", "Country name or ISO code.", "country_code", "country_region", "国家"),
            _c("signup_date", "When the customer was created.", "created_at", "registration_date", "signup", "join_date", "注册日期",
               kind="date"),
            _c("acquisition_channel", "Where the customer came from.", "channel", "source", "acquisition_source", "获客渠道"),
            _c("marketing_consent", "Whether marketing may contact them (true/false, yes/no, 1/0, 是/否).",
               "consent", "opt_in", "email_opt_in", "营销许可"),
            UPDATED_AT,
        ),
        required=("customer_id",),
        file_synonyms=("customer", "contacts", "clients"),
        key=("customer_id",),
    ),
    Entity(
        "products",
        "Product catalogue.",
        (
            _c("product_id", "Product id or SKU.", "sku", "item_id", "商品编号"),
            _c("product_name", "Product name.", "name", "title", "商品名称"),
            _c("category", "Product category.", "product_category", "类目", "品类"),
            _c("list_price", "List price, any amount format.", "price", "unit_price", "价格", kind="amount"),
            _c("currency", "ISO currency code of list_price.", "currency_code", "币种"),
            UPDATED_AT,
        ),
        required=("product_id",),
        file_synonyms=("product", "items", "catalog", "catalogue"),
        key=("product_id",),
    ),
    Entity(
        "orders",
        "Order headers. The only required entity; of it only customer_id, order_date and amount are required.",
        (
            _c("order_id", "Order id; if absent, a stable id is derived from the row's content.", *ORDER_ID_SYNONYMS),
            _c("customer_id", "Who bought.", *BUYER_SYNONYMS, personal=True),
            _c("order_date", "Order date or datetime.", *ORDER_DATE_SYNONYMS, kind="date"),
            _c("status", "paid / cancelled / refunded (synonyms such as completed, canceled, returned accepted; "
               "partially_refunded is paid, less its refunded_amount); mapping.yml's status_values maps others.",
               "order_status", "state", "financial_status", "payment_status", "订单状态"),
            _c("amount", "Order total, any amount format (1,234.50 / ¥1234.5 / $12); if absent, the sum of the order's lines.",
               "total", "order_amount", "order_total", "revenue", "value", "sales", "金额", "订单金额", kind="amount"),
            _c("refunded_amount", "Amount refunded on the order (a partial refund): its revenue is the amount less "
               "this.", "refund_amount", "amount_refunded", "total_refunded", "order_refund", "退款金额", kind="amount"),
            _c("currency", "ISO currency code; else read from the amount's symbol; else the default currency.", "currency_code",
               "order_currency", "币种"),
            _c("channel", "Sales channel (online, store, phone, ...).", "sales_channel", "order_channel", "渠道"),
            _c("rep_id", "Sales rep credited with the order.", "sales_rep_id", "salesperson_id", "owner_id", "销售编号"),
            UPDATED_AT,
        ),
        required=("customer_id", "order_date"),
        file_synonyms=("order", "sales", "transactions", "order_log", "invoices"),
        key=("order_id",),
    ),
    Entity(
        "order_items",
        "Order lines.",
        (
            _c("order_id", "Order the line belongs to.", *ORDER_ID_SYNONYMS),
            _c("line_number", "Line number within the order; if absent, lines are numbered in file order.",
               "line_no", "line", "item_no", "row_id", "order_item_id", "line_id", "行号", kind="number"),
            _c("product_id", "Product bought.", "sku", "item_id", "stockcode", "stock_code", "product_code", "商品编号"),
            _c("quantity", "Units; negative on a return line of a line-level file; if the file has no quantity column, "
               "each line is one unit.", "qty", "units", "数量", kind="number"),
            _c("unit_price", "Price per unit, any amount format.", "price", "unitprice", "单价", kind="amount"),
            _c("discount", "Discount on the line: an amount, or a rate from 0 to 1 when the line carries its own "
               "line_amount (the amount then already has it deducted).", "discount_amount", "折扣", kind="amount"),
            _c("line_amount", "The line's amount as the file states it (a line-level sales file's Sales column); "
               "else quantity x unit_price - discount.", "sales", "amount", "line_total", "total", "revenue",
               "subtotal", "金额", kind="amount"),
            _c("customer_id", "Who bought: a line-level file carries its order's attributes on every line, and its "
               "orders are derived from the lines.", *BUYER_SYNONYMS, personal=True),
            _c("order_date", "Order date of a line-level file's line.", *ORDER_DATE_SYNONYMS, kind="date"),
            _c("status", "Order status of a line-level file's line (as orders.status).", "order_status",
               "financial_status", "payment_status", "订单状态"),
            _c("refunded_amount", "Amount refunded on a line-level file's order, once per order (on its first line, "
               "as Shopify writes it, or the same on every line).", "refund_amount", "amount_refunded", "total_refunded",
               "order_refund", "退款金额",
               kind="amount"),
            _c("currency", "ISO currency code of the line's amounts.", "currency_code", "order_currency", "币种"),
            _c("channel", "Sales channel of a line-level file's order.", "sales_channel", "order_channel", "渠道"),
            _c("rep_id", "Sales rep of a line-level file's order.", "sales_rep_id", "salesperson_id", "销售编号"),
            UPDATED_AT,
        ),
        required=("order_id", "product_id"),
        file_synonyms=("order_lines", "lines", "orderitems", "order_item"),
        key=("order_id", "line_number"),
    ),
    Entity(
        "interactions",
        "Touches: email_sent, email_open, email_click, call, meeting, web_visit, chat.",
        (
            _c("interaction_id", "Interaction id.", "activity_id", "event_id", "id"),
            _c("customer_id", "Customer touched.", "cust_id", "contact_id", "客户id", personal=True),
            _c("interaction_type", "email_sent / email_open / email_click / call / meeting / web_visit / chat.", "type", "activity_type", "event_type", "类型"),
            _c("occurred_at", "When it happened.", "timestamp", "event_time", "activity_date", "date", "时间", kind="date"),
            _c("campaign_id", "Campaign it belongs to, if any.", "campaign", "活动编号"),
            _c("rep_id", "Rep involved, if any.", "owner_id", "sales_rep_id"),
        ),
        required=("customer_id", "interaction_type", "occurred_at"),
        file_synonyms=("activities", "events", "interaction", "touches"),
        key=("interaction_id",),
    ),
    Entity(
        "opportunities",
        "Leads and opportunities; every version of a record is one stage change (new → contacted → qualified → "
        "proposal → negotiation → won/lost).",
        (
            _c("opportunity_id", "Lead / opportunity id.", "lead_id", "opp_id", "deal_id", "id", "商机编号"),
            _c("customer_id", "Customer, once known.", "cust_id", "contact_id", "客户id", personal=True),
            _c("created_at", "When the lead was created.", "created", "lead_date", "create_date", "created_date",
               "date_created", "创建时间", kind="date"),
            _c("source", "Lead source.", "lead_source", "channel", "来源"),
            _c("campaign_id", "Campaign that generated it.", "campaign", "活动编号"),
            _c("stage", "new / contacted / qualified / proposal / negotiation / won / lost.", "status", "deal_stage", "阶段"),
            _c("stage_changed_at", "When it entered the stage.", "stage_date", "status_changed_at", "阶段时间", kind="date"),
            _c("amount", "Expected or won amount.", "value", "deal_amount", "金额", kind="amount"),
            _c("currency", "ISO currency code of amount.", "currency_code", "币种"),
            _c("owner_rep_id", "Owning rep.", "owner_id", "rep_id", "sales_rep_id"),
            # A CRM that exports each deal once, as it stands (HubSpot, Salesforce), says when a closed one closed
            # here and nowhere else; on an open deal the same column is the owner's estimate.
            _c("closed_at", "When a won or lost deal closed (an open deal's is an estimate, ignored).", "close_date",
               "closed_date", "date_closed", "closing_date", "actual_close_date", "deal_closed_on", "关闭日期",
               "成交日期", kind="date"),
        ),
        required=("opportunity_id", "stage"),
        file_synonyms=("leads", "opportunity", "deals", "pipeline"),
        key=("opportunity_id",),
    ),
    Entity(
        "campaigns",
        "Marketing campaigns.",
        (
            _c("campaign_id", "Campaign id.", "id", "活动编号"),
            _c("campaign_name", "Name.", "name", "活动名称"),
            _c("channel", "email / sms / social / search / event / ...", "campaign_channel", "渠道"),
            _c("start_date", "First day.", "start", "starts_at", "开始日期", kind="date"),
            _c("end_date", "Last day.", "end", "ends_at", "结束日期", kind="date"),
            _c("cost", "Total cost, any amount format.", "budget", "spend", "成本", kind="amount"),
            _c("currency", "ISO currency code of cost.", "currency_code", "币种"),
        ),
        required=("campaign_id",),
        file_synonyms=("campaign", "marketing_campaigns"),
        key=("campaign_id",),
    ),
    Entity(
        "tickets",
        "Service tickets.",
        (
            _c("ticket_id", "Ticket id.", "case_id", "id", "工单号"),
            _c("customer_id", "Customer.", "cust_id", "contact_id", "客户id", personal=True),
            _c("opened_at", "When opened.", "created_at", "opened", "创建时间", kind="date"),
            _c("first_response_at", "First agent response.", "first_reply_at", "responded_at", "首次响应时间", kind="date"),
            _c("resolved_at", "When resolved, if so.", "closed_at", "resolved", "solved_at", "解决时间", kind="date"),
            _c("status", "open / pending / resolved / closed (new, on hold, solved and the like read as these); "
               "mapping.yml's status_values maps others.", "ticket_status", "状态"),
            _c("category", "Topic.", "type", "issue_type", "类别"),
            _c("satisfaction", "CSAT 1-5.", "csat", "rating", "满意度", kind="number"),
            _c("rep_id", "Agent.", "agent_id", "owner_id", "assignee_id"),
            UPDATED_AT,
        ),
        required=("ticket_id", "customer_id", "opened_at"),
        file_synonyms=("ticket", "cases", "service_tickets", "support_tickets"),
        key=("ticket_id",),
    ),
    Entity(
        "surveys",
        "Survey answers (NPS).",
        (
            _c("survey_id", "Answer id; if absent, customer_id + answered_at identify the answer.", "response_id", "id"),
            _c("customer_id", "Who answered.", "cust_id", "contact_id", "客户id", personal=True),
            _c("answered_at", "When.", "responded_at", "date", "submitted_at", "答复时间", kind="date"),
            _c("nps", "Likelihood to recommend, 0-10.", "score", "nps_score", "recommend", "推荐值", kind="number"),
        ),
        required=("customer_id", "answered_at", "nps"),
        file_synonyms=("survey", "nps", "survey_responses"),
        key=("survey_id",),
    ),
    Entity(
        "sales_reps",
        "Sales and service staff.",
        (
            _c("rep_id", "Rep id.", "sales_rep_id", "employee_id", "id", "销售编号"),
            _c("rep_name", "Name.", "name", "full_name", "姓名"),
            _c("team", "Team.", "department", "团队"),
            _c("region", "Region covered.", "territory", "区域"),
        ),
        required=("rep_id",),
        file_synonyms=("reps", "sales_rep", "salespeople", "staff", "employees"),
        key=("rep_id",),
    ),
)

ENTITIES_BY_NAME = {e.name: e for e in ENTITIES}

# Columns ingestion adds to every raw table.
LINEAGE_COLUMNS = ("_source_file", "_drop_date", "_row_number", "_loaded_at", "_extra_columns")


def normalise_header(header: str) -> str:
    """Fold a header cell to the form synonyms are written in: lower case, BOM and quotes gone, separators as _."""
    text = header.replace("\ufeff", "").strip().strip('"').strip().lower()
    return re.sub(r"[\s\-./]+", "_", text).strip("_")


def entity_for_file(stem: str) -> Entity | None:
    """The entity a file name (without extension) names, directly or through a synonym, also followed by "export"
    and numbers or a date as shops and CRMs name their exports (orders_export_1, customers-2024-03-05, sales_2)."""
    key = normalise_header(stem)
    for candidate in dict.fromkeys((key, _EXPORT_SUFFIX.sub("", key))):
        for entity in ENTITIES:
            if candidate == entity.name or candidate in entity.file_synonyms:
                return entity
    return None


_EXPORT_SUFFIX = re.compile(r"(?:_export)?(?:_\d+)*$")


def match_columns(entity: Entity, headers: list[str], explicit: dict[str, str] | None = None
                  ) -> tuple[dict[int, str], list[str]]:
    """Map header positions to canonical columns.

    The user's mapping (`explicit`: folded header -> canonical name) comes first; then an exact canonical name wins
    over a synonym, so a file with both ``channel`` and ``source`` columns maps each to its own canonical column.
    Returns (position -> canonical name, headers that matched nothing).
    """
    folded = [normalise_header(h) for h in headers]
    mapping: dict[int, str] = {}
    taken: set[str] = set()
    # Without separators: a camelCase header (Xero's InvoiceNumber, an API's customerId) folds to invoicenumber,
    # which meets invoice_number so.
    squashed = {c.name: {n.replace("_", "") for n in (c.name, *c.synonyms)} for c in entity.columns}
    ways = (
        lambda name: [(explicit or {}).get(name)],
        lambda name: [name],
        lambda name: [c.name for c in entity.columns if name in c.synonyms],
        lambda name: [c.name for c in entity.columns if name.replace("_", "") in squashed[c.name]],
    )
    for candidates in ways:  # each way of matching in turn, over every column not yet matched
        for pos, name in enumerate(folded):
            if pos in mapping:
                continue
            target = next((c for c in candidates(name) if c in entity.column_names and c not in taken), None)
            if target is not None:
                mapping[pos] = target
                taken.add(target)
    extras = [headers[pos] for pos in range(len(headers)) if pos not in mapping]
    return mapping, extras
