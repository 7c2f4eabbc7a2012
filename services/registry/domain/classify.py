"""Classifications: GB/T 4754-2017 industry codes, enterprise scale (工信部联企业〔2011〕300号), focus domains."""

from __future__ import annotations

import re
from decimal import Decimal
from enum import StrEnum

INDUSTRY_CODE_RE = re.compile(r"^\d{2,4}$")


class Scale(StrEnum):
    LARGE = "large"  # 大型
    MEDIUM = "medium"  # 中型
    SMALL = "small"  # 小型
    MICRO = "micro"  # 微型


SCALE_ZH = {Scale.LARGE: "大型", Scale.MEDIUM: "中型", Scale.SMALL: "小型", Scale.MICRO: "微型"}
# an enterprise's registration status as users read it (exports)
STATUS_ZH = {"active": "在库", "deregistered": "已注销"}

MANUFACTURING_DIVISIONS = range(13, 44)  # 门类 C 制造业: 大类 13–43
# 工业 = 采矿业 (06–12) + 制造业 (13–43) + 电力、热力、燃气及水生产和供应业 (44–46)
INDUSTRIAL_DIVISIONS = range(6, 47)


def division_of(industry_code: str) -> int:
    return int(industry_code[:2])


def is_manufacturing(industry_code: str) -> bool:
    return division_of(industry_code) in MANUFACTURING_DIVISIONS


def is_industrial(industry_code: str) -> bool:
    return division_of(industry_code) in INDUSTRIAL_DIVISIONS


# GB/T 4754-2017 门类 (section letter) → its 大类 (division) range
SECTIONS: dict[str, range] = {
    "A": range(1, 6), "B": range(6, 13), "C": range(13, 44), "D": range(44, 47), "E": range(47, 51),
    "F": range(51, 53), "G": range(53, 61), "H": range(61, 63), "I": range(63, 66), "J": range(66, 70),
    "K": range(70, 71), "L": range(71, 73), "M": range(73, 76), "N": range(76, 80), "O": range(80, 83),
    "P": range(83, 84), "Q": range(84, 86), "R": range(86, 91), "S": range(91, 97), "T": range(97, 98),
}
_SECTION_CODE_RE = re.compile(r"^([A-Za-z])\s*(\d{2,4})$")


def normalise_industry_code(value: str) -> str:
    """``C3484`` (门类 letter + code, as often written) → ``3484``; other values unchanged (stripped).
    Raises ValueError (Chinese) when the letter is not the code's 门类."""
    value = value.strip()
    m = _SECTION_CODE_RE.match(value)
    if m is None:
        return value
    letter, code = m[1].upper(), m[2]
    divisions = SECTIONS.get(letter)
    if divisions is None or int(code[:2]) not in divisions:
        right = next((k for k, r in SECTIONS.items() if int(code[:2]) in r), None)
        hint = f"(行业代码 {code} 属门类 {right})" if right else ""
        raise ValueError(f"行业门类“{letter}”与行业代码“{code}”不符{hint}")
    return code


def industry_code_error(industry_code: str) -> str | None:
    """None if the code looks like a GB/T 4754-2017 大类/中类/小类 code (2–4 digits, division 01–97)."""
    if not INDUSTRY_CODE_RE.match(industry_code):
        return "行业代码须为 GB/T 4754-2017 的2–4位数字代码(如 3562)"
    if not 1 <= division_of(industry_code) <= 97:
        return f"行业大类“{industry_code[:2]}”不存在(01–97)"
    return None


def industrial_scale(employees: int, revenue_yuan: Decimal) -> Scale:
    """工业企业划型 (工信部联企业〔2011〕300号 第四条(二)).

    大型: 从业人员 ≥ 1000 且 营业收入 ≥ 40000万元; 中型: 从业人员 ≥ 300 且 营业收入 ≥ 2000万元;
    小型: 从业人员 ≥ 20 且 营业收入 ≥ 300万元; 其余为微型。大、中、小型须同时满足所列指标的下限,
    否则下划一档。
    """
    if employees >= 1000 and revenue_yuan >= Decimal("400000000"):
        return Scale.LARGE
    if employees >= 300 and revenue_yuan >= Decimal("20000000"):
        return Scale.MEDIUM
    if employees >= 20 and revenue_yuan >= Decimal("3000000"):
        return Scale.SMALL
    return Scale.MICRO


def derive_scale(industry_code: str, employees: int | None, revenue_yuan: Decimal | None) -> Scale | None:
    """Scale derived for industrial enterprises when both inputs are known; None otherwise."""
    if employees is None or revenue_yuan is None or not is_industrial(industry_code):
        return None
    return industrial_scale(employees, revenue_yuan)


STRATEGIC_EMERGING = {
    1: "新一代信息技术产业",
    2: "高端装备制造产业",
    3: "新材料产业",
    4: "生物产业",
    5: "新能源汽车产业",
    6: "新能源产业",
    7: "节能环保产业",
    8: "数字创意产业",
    9: "相关服务业",
}


class Foundation(StrEnum):
    """工业"六基" (plus 工业基础软件 of 五基, mapped to key_software)."""

    CORE_PARTS = "core_parts"  # 核心基础零部件
    CORE_COMPONENTS = "core_components"  # 核心基础元器件
    KEY_SOFTWARE = "key_software"  # 关键(基础)软件
    ADVANCED_PROCESS = "advanced_process"  # 先进基础工艺
    KEY_MATERIALS = "key_materials"  # 关键基础材料
    TECH_FOUNDATION = "tech_foundation"  # 产业技术基础


FOUNDATION_ZH = {
    Foundation.CORE_PARTS: "核心基础零部件",
    Foundation.CORE_COMPONENTS: "核心基础元器件",
    Foundation.KEY_SOFTWARE: "关键基础软件",
    Foundation.ADVANCED_PROCESS: "先进基础工艺",
    Foundation.KEY_MATERIALS: "关键基础材料",
    Foundation.TECH_FOUNDATION: "产业技术基础",
}

MOBILE_RE = re.compile(r"^1[3-9]\d{9}$")
# an e-mail address as users type it: local part, @, a domain with a dot (no spaces)
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s.]+(\.[^@\s.]+)+$")

POOL_LEVELS = ("county", "city", "province")
# Tier tracks cultivated in county-level pools (区级创新型 / 专精特新培育库): an enterprise eligible under a rule set
# of one of these tiers enters its county's pool by rule result. Higher tiers are pooled at city/province level
# by nomination.
COUNTY_POOL_TRACKS = frozenset({"innovative", "srdi"})
