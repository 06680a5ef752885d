"""The agency set of config/agencies.toml, for the CLI and tests."""

# (institution_id, institution_name, profile)
DEFAULT_BANKS = (
    ("icbc", "中国工商银行", "bank"),
    ("ccb", "中国建设银行", "bank"),
    ("boc", "中国银行", "bank"),
    ("hsbank", "徽商银行", "bank"),
    ("alipay", "支付宝", "payment"),
    ("gyzq", "国元证券", "securities"),
)
DEFAULT_VEHICLE_REGISTRY = "hefei-vmo"
DEFAULT_REALESTATE_REGISTRY = "hefei-rer"
