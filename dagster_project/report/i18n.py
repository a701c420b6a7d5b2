"""Every label of the report in English and Simplified Chinese, and the values of our own categories.

One table, so a missing translation is a test failure (`test_every_label_has_both_languages`), not a blank in the
report. Free text from the data (campaign names, churn drivers) is shown as it is.
"""

from __future__ import annotations

LANGUAGES = ("en", "zh")

LABELS: dict[str, tuple[str, str]] = {
    # page
    "title": ("CRM report", "CRM 客户分析报告"),
    "as_of": ("Data as of", "数据截至"),
    "refreshed": ("Last refresh", "最近刷新"),
    "generated": ("Report generated", "报告生成时间"),
    "period_note": ("Changes compare the {days} days to {as_of} with the {days} days before.",
                    "变化为截至 {as_of} 的最近 {days} 天与之前 {days} 天的对比。"),
    "amounts_in": ("Amounts in", "金额币种"),
    "money_note": ("Amounts recorded in another currency are converted at the warehouse's exchange-rate table.",
                   "以其他币种记录的金额已按数据仓库的汇率表换算。"),
    "not_available": ("Not available for this export (it has no {what}).", "此导出数据不支持该部分（缺少{what}）。"),
    "contents": ("Contents", "目录"),
    # KPIs
    "kpis": ("Headline figures", "核心指标"),
    "active_customers": ("Active customers", "活跃客户数"),
    "revenue": ("Revenue", "销售额"),
    "aov": ("Average order value", "平均订单金额"),
    "repeat_rate": ("Repeat-customer rate", "复购客户占比"),
    "churn_rate": ("Churn rate (no order in 365 days)", "流失率（365 天未下单）"),
    "nps": ("NPS", "净推荐值 NPS"),
    "forecast_30": ("Forecast revenue, next 30 days", "未来 30 天预测销售额"),
    "forecast_90": ("Forecast revenue, next 90 days", "未来 90 天预测销售额"),
    "churn_definitions": (
        "Churn rate looks back: of the customers with a paid order, the share whose last one is 365 days or more "
        "ago. Churn probability (the churn-risk chart) looks ahead: the model's chance that a customer places no "
        "order in the next 90 days; most customers buy less often than every 90 days, so most score high.",
        "流失率是回顾指标：在有过已支付订单的客户中，最近一次订单距今已满 365 天的客户占比。流失概率（流失风险图）是预测指标："
        "模型估计客户在未来 90 天内不下单的可能性；多数客户的购买间隔长于 90 天，因此多数客户得分较高。"),
    "vs_previous": ("vs previous period", "较上期"),
    "vs_last_days": ("vs last {days} days", "较过去 {days} 天"),
    "percentage_points": ("pts", "个百分点"),
    "points": ("points", "分"),
    # sections
    "revenue_trend": ("Revenue trend and forecast", "销售额趋势与预测"),
    "actual": ("Actual (daily)", "实际（日）"),
    "actual_7d": ("Actual, 7-day average", "实际 7 日均值"),
    "forecast": ("Forecast", "预测"),
    "interval": ("80% interval", "80% 预测区间"),
    "date": ("Date", "日期"),
    "segments": ("RFM segments", "RFM 客户分群"),
    "customers": ("Customers", "客户数"),
    "segment": ("Segment", "分群"),
    "pareto": ("Revenue concentration (Pareto)", "销售额集中度（帕累托）"),
    "share_customers": ("Share of customers (top spenders first)", "客户占比（按消费额从高到低）"),
    "cumulative_share": ("Cumulative share of revenue", "累计销售额占比"),
    "equal_share": ("Equal share", "均匀分布"),
    "decile": ("Decile", "十分位组"),
    "orders": ("Orders", "订单数"),
    "revenue_share": ("Revenue share", "销售额占比"),
    "avg_ticket": ("Average ticket", "客单价"),
    "top20_share": ("The top 20% of customers bring {share} of revenue.", "前 20% 的客户贡献了 {share} 的销售额。"),
    "cohorts": ("Cohort retention", "同期群留存"),
    "cohort_month": ("First-order month", "首单月份"),
    "months_since": ("Months since first order", "距首单月数"),
    "retention_pct": ("Retention %", "留存率 %"),
    "funnel": ("Sales funnel", "销售漏斗"),
    "stage": ("Stage", "阶段"),
    "reached": ("Opportunities reaching the stage", "到达该阶段的商机数"),
    "conversion_to_next": ("Conversion to next stage", "转化到下一阶段"),
    "win_rate": ("Win rate {rate} (won / closed), median sales cycle {days} days.",
                 "赢单率 {rate}（赢单 / 已关闭），销售周期中位数 {days} 天。"),
    "campaigns": ("Campaign ROI", "营销活动投资回报率"),
    "roi": ("ROI (attributed revenue / cost − 1)", "投资回报率（归因销售额 / 成本 − 1）"),
    "cost": ("Cost", "成本"),
    "attributed_revenue": ("Attributed revenue", "归因销售额"),
    "campaign": ("Campaign", "营销活动"),
    "channel": ("Channel", "渠道"),
    "roi_short": ("ROI", "投资回报率"),
    "participants": ("Participants", "参与客户数"),
    "revenue_lift": ("Extra revenue per participant (95% interval)", "每位参与客户带来的增量销售额（95% 区间）"),
    "incremental_roi": ("Incremental ROI", "增量投资回报率"),
    "no_attributed_revenue": ("no attributed revenue", "无归因销售额"),
    "campaigns_note": (
        "ROI credits a campaign with every order its participants placed within 30 days of taking part, including "
        "orders they would have placed anyway. The extra revenue per participant is what the campaign caused: "
        "participants compared with customers it reached who did not take part and behaved alike before it; "
        "incremental ROI is based on it. Campaigns whose channel records nobody reached have no such estimate.",
        "投资回报率把参与客户在参与后 30 天内的全部订单都计入活动，其中包括他们本来就会下的订单。"
        "每位参与客户的增量销售额才是活动真正带来的：将参与客户与活动触达但未参与、"
        "且活动前行为相近的客户对比得出；增量投资回报率基于该数值计算。渠道未记录触达客户的活动无法给出该估计。"),
    "service": ("Service response and resolution", "客服响应与解决"),
    "month": ("Month", "月份"),
    "hours": ("Hours (median)", "小时（中位数）"),
    "first_response": ("First response", "首次响应"),
    "resolution": ("Resolution", "解决"),
    "tickets": ("Tickets opened", "新建工单数"),
    "clv": ("Customer lifetime value (12 months)", "客户终身价值（12 个月）"),
    "clv_12m": ("Predicted 12-month CLV", "预测 12 个月 CLV"),
    "clv_total": ("Total predicted 12-month CLV {total}; median per customer {median}.",
                  "预测 12 个月 CLV 合计 {total}；每位客户中位数 {median}。"),
    "and_above": ("{value} and above", "{value} 及以上"),
    "clv_overflow": ("The last bar holds every customer with a predicted 12-month CLV of {value} or more "
                     "({customers}).",
                     "最后一根柱包含预测 12 个月 CLV 不低于 {value} 的全部客户（{customers} 位）。"),
    "churn_risk": ("Churn risk", "流失风险"),
    "churn_probability": ("Churn probability (next 90 days)", "流失概率（未来 90 天）"),
    "risk_band": ("Risk band", "风险等级"),
    "watchlist": ("Churn watchlist", "流失预警名单"),
    "watchlist_note": ("Valuable customers (top 20% by CLV) at high risk who agreed to marketing; the key is a "
                       "pseudonym, look it up in the CRM.",
                       "高价值（CLV 前 20%）且高风险、并同意接收营销的客户；编号为化名，请在 CRM 中查询。"),
    "watchlist_empty": ("Nobody is on the watchlist: no customer is valuable, at high risk and consenting to "
                        "marketing.", "预警名单为空：没有同时满足高价值、高风险且同意营销的客户。"),
    "customer_key": ("Customer (pseudonym)", "客户（化名）"),
    "value_at_risk": ("Value at risk", "风险价值"),
    "main_driver": ("Main driver", "主要原因"),
    "suggested_action": ("Suggested action", "建议行动"),
    "quality": ("Data quality", "数据质量"),
    "rows_read": ("Rows read", "读取行数"),
    "rows_landed": ("Rows loaded", "入库行数"),
    "rows_quarantined": ("Rows quarantined", "隔离行数"),
    "rows_merged": ("Merged duplicates", "合并的重复行"),
    "rows_superseded": ("Superseded (older versions)", "被新版本取代"),
    "rows_deferred": ("Deferred (dated after the as-of date)", "延后（晚于数据截至日）"),
    "rows_unattributed": ("Unattributed (no customer)", "未归属（无客户）"),
    "unaccounted_rows": ("Unaccounted", "未对账行数"),
    "reconciliation_note": ("Every row read has one outcome: read = loaded + quarantined + merged + superseded + "
                            "deferred + unattributed; unaccounted rows must be 0.",
                            "读取的每一行都有且仅有一个去向：读取 = 入库 + 隔离 + 合并 + 被取代 + 延后 + 未归属；未对账行数必须为 0。"),
    "files": ("Files", "文件数"),
    "entity": ("Entity", "实体"),
    "reason": ("Reason", "原因"),
    "rows": ("Rows", "行数"),
    "quarantine_reasons": ("Most frequent quarantine reasons", "最常见的隔离原因"),
    "failing_checks": ("Failing checks", "未通过的检查"),
    "no_failing_checks": ("Every recorded check passed ({count} checks).", "所有已记录的检查均通过（共 {count} 项）。"),
    "no_checks": ("No quality checks recorded.", "尚无数据质量检查记录。"),
    "suite": ("Suite", "检查套件"),
    "expectation": ("Check", "检查项"),
    "severity": ("On failure", "失败时"),
    "observed": ("Observed", "观测值"),
    # how far to trust the models
    "trust": ("How far to trust these numbers", "这些数字有多可信"),
    "trust_intro": (
        "Each model is judged on data it did not see, next to the simplest good alternative. A model that does not "
        "beat it is flagged on its charts; treat those figures as rough.",
        "每个模型都在其未见过的数据上评估，并与最简单的有效替代方法对比。未能胜过替代方法的模型会在其图表上标注警告，"
        "其数字仅供粗略参考。"),
    "trust_better": ("{question}: better than {baseline} ({metric} {value} vs {baseline_value})",
                     "{question}：优于{baseline}（{metric} {value}，对比 {baseline_value}）"),
    "trust_not_better": ("{question}: NOT better than {baseline} ({metric} {value} vs {baseline_value})",
                         "{question}：未能优于{baseline}（{metric} {value}，对比 {baseline_value}）"),
    "trust_not_evaluated": ("{question}: not evaluated on unseen data", "{question}：未在未见过的数据上评估"),
    "trust_published": ("published: {published}; judged on {n} unseen rows",
                        "发布的方法：{published}；基于 {n} 条未见过的数据评估"),
    "trust_warning": ("Warning: {sentence}. Treat these figures as rough.", "警告：{sentence}。这些数字仅供粗略参考。"),
    "what_models": ("model evaluations", "模型评估"),
    # what an export may lack (for "not available")
    "what_orders": ("paid orders", "已支付订单"),
    "what_segments": ("RFM segments", "RFM 分群"),
    "what_deciles": ("spend deciles", "消费十分位"),
    "what_cohorts": ("cohorts", "同期群"),
    "what_opportunities": ("leads or opportunities", "线索或商机"),
    "what_campaigns": ("campaigns with a cost", "有成本的营销活动"),
    "what_tickets": ("service tickets", "客服工单"),
    "what_clv": ("CLV scores", "CLV 评分"),
    "what_churn": ("churn scores", "流失评分"),
    "what_reconciliation": ("load reconciliation", "加载对账记录"),
}

# Values of the warehouse's own categories, by kind (the same word can differ: a "new" customer, a "new" lead).
VALUES: dict[str, dict[str, str]] = {
    "segment": {
        "champions": "冠军客户", "loyal": "忠诚客户", "potential loyalists": "潜在忠诚客户", "new": "新客户",
        "promising": "有潜力客户", "need attention": "需要关注", "about to sleep": "即将沉睡", "at risk": "有流失风险",
        "can't lose them": "不能失去的客户", "hibernating": "休眠客户", "lost": "已流失",
    },
    "risk_band": {"low": "低", "medium": "中", "high": "高"},
    "stage": {"new": "新建", "contacted": "已联系", "qualified": "已确认", "proposal": "方案", "negotiation": "谈判",
              "won": "赢单"},
    "action": {"win-back offer": "挽回优惠", "service call": "客服回访", "account review": "客户经理复盘",
               "re-engagement campaign": "重新激活营销", "standard retention programme": "常规留存计划"},
    "severity": {"warn": "警告", "stop": "阻止发布"},
    # filled in from the models' own wording (dagster_project/analytics/*: ModelQuality)
    "trust_question": {"campaign_lift": "营销活动为参与客户带来的增量销售额",
                       "health": "哪些客户是健康的（未来 90 天内继续购买）",
                       "forecast": "未来 90 天的每日销售额",
                       "churn": "哪些客户会在未来 90 天内停止购买",
                       "clv": "每位客户未来 90 天的购买次数"},
    "baseline": {"all non-participants (order-count and recency strata)": "所有未参与客户（按订单数与最近购买分层）",
                 "reached non-participants, unmatched": "已触达但未参与的客户（未匹配）",
                 "days since the last purchase": "距上次购买的天数",
                 "same weekday last week (seasonal naive)": "上周同一天的数值（季节性朴素法）",
                 "BG/NBD probability of no purchase": "BG/NBD 模型估计的不购买概率",
                 "each customer's purchases in the previous 90 days": "每位客户前 90 天的购买次数",
                 "each customer's past purchase rate (repeat purchases per day since the first, times 90 days)":
                     "每位客户过去的购买频率（首购以来每天的复购次数乘以 90 天）"},
    "contender": {"participants vs matched reached non-participants": "参与客户对比匹配的已触达未参与客户",
                  "prophet": "Prophet", "auto_ets": "AutoETS（指数平滑）", "seasonal_naive": "季节性朴素法",
                  "LightGBM churn model": "LightGBM 流失模型", "BG/NBD probability of no purchase": "BG/NBD 不购买概率",
                  "days since the last purchase": "距上次购买的天数", "bg_nbd": "BG/NBD 模型",
                  "mbg_nbd": "MBG/NBD 模型（允许首购后流失）"},
    "metric": {"placebo bias (% of participant spend)": "安慰剂偏差（占参与客户消费的百分比）",
               "RMSE (purchases per customer)": "均方根误差（每位客户的购买次数）"},
    # campaign_effectiveness: why a campaign has no ROI or no lift (dagster_project/analytics/campaigns.py)
    "roi_note": {
        "no cost recorded": "未记录成本",
        "no attributed revenue: no participation recorded": "无归因销售额：未记录任何参与",
        "no attributed revenue: no participant bought within the window": "无归因销售额：参与客户在窗口期内未购买",
    },
    "lift_note": {
        "no reach data: the export records nobody this campaign reached": "无触达数据：导出数据未记录该活动触达的客户",
        "too few participants or reached non-participants to compare (at least 10 of each)":
            "参与客户或已触达未参与客户过少，无法比较（每组至少 10 位）",
        "no start date to measure from": "缺少开始日期，无法衡量",
    },
    "entity": {"customers": "客户", "orders": "订单", "order_items": "订单明细", "interactions": "互动",
               "opportunities": "商机", "campaigns": "营销活动", "tickets": "工单", "surveys": "问卷",
               "products": "产品", "sales_reps": "销售代表"},
}


MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# Date axes (plotly tick formats, d3-time-format): Chinese dates read year, month, day ("2025年3月"); English keeps
# plotly's own ("Mar 2025"). By the spacing of the ticks, in milliseconds or months.
DATE_TICKS_ZH = [
    dict(dtickrange=[None, 86_400_000], value="%-m月%-d日 %H:%M"),
    dict(dtickrange=[86_400_000, "M1"], value="%-m月%-d日"),
    dict(dtickrange=["M1", "M12"], value="%Y年%-m月"),
    dict(dtickrange=["M12", None], value="%Y年"),
]
DATE_HOVER_ZH = "%Y年%-m月%-d日"


class Translator:
    """`t(key, **values)` for labels, `t.value(kind, text)` for category values, in one language."""

    def __init__(self, lang: str):
        if lang not in LANGUAGES:
            raise ValueError(f"language {lang!r} is not one of {', '.join(LANGUAGES)}")
        self.lang = lang
        self._index = LANGUAGES.index(lang)

    def __call__(self, key: str, **values) -> str:
        text = LABELS[key][self._index]
        return text.format(**values) if values else text

    def month(self, period: str) -> str:
        """A month ("2025-03", or a date from it on) as the language writes it: "Mar 2025", "2025年3月"."""
        year, month = int(str(period)[:4]), int(str(period)[5:7])
        return f"{year}年{month}月" if self.lang == "zh" else f"{MONTHS_EN[month - 1]} {year}"

    def value(self, kind: str, text) -> str:
        """A category value of the given kind in this language; unknown values unchanged."""
        if text is None:
            return ""
        return VALUES[kind].get(str(text), str(text)) if self.lang == "zh" else str(text)
