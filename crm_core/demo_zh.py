"""The Chinese demo company's vocabulary (``chatcrm demo --lang zh``): names, companies, cities,
products, notes, deals and tickets written as a sales team in mainland China would write them.

Also the source of realistic Chinese names for the search benchmark and the CJK search tests.
"""

from __future__ import annotations

import random

# The most common surnames first (王, 李, 张 … cover a fifth of the population), two compound ones.
SURNAMES = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "高",
    "林", "罗", "郑", "梁", "谢", "宋", "唐", "许", "韩", "冯", "邓", "曹", "彭", "曾", "肖", "田", "董", "袁",
    "潘", "于", "蒋", "蔡", "余", "杜", "叶", "程", "苏", "魏", "吕", "丁", "任", "沈", "欧阳", "司马",
]  # fmt: skip
GIVEN_NAMES = [
    "伟", "芳", "娜", "敏", "静", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "霞",
    "平", "刚", "桂英", "丽", "建华", "建国", "志强", "晓明", "海燕", "文博", "子涵", "浩然", "欣怡", "雨萱",
    "梓轩", "思远", "嘉怡", "俊杰", "晓燕", "丽华", "国庆", "春梅", "宇航", "佳琪", "一鸣", "婷婷", "晨曦",
]  # fmt: skip
# A company's trade name (字号): what people call it and type into /customer.
BRANDS = [
    "阿克米", "华创", "鼎盛", "恒通", "瑞丰", "新航", "宏达", "金桥", "远景", "天成", "博睿", "中鑫", "盛世",
    "嘉禾", "安信", "汇丰源", "星河", "云帆", "德润", "海纳", "卓越", "万象", "立信", "众合", "启明", "和泰",
    "锦程", "永安", "铭扬", "东方红", "青松", "正泰源", "凯达", "富邦", "佳美", "联创", "智联", "九州",
]  # fmt: skip
TRADES = [
    "科技", "贸易", "物流", "医疗器械", "餐饮管理", "建筑工程", "电子", "文化传媒", "教育咨询", "印刷",
    "信息技术", "家具", "商贸", "办公设备", "网络科技", "生物科技",
]  # fmt: skip
FORMS = ["有限公司", "有限公司", "有限公司", "股份有限公司", "集团有限公司"]
# city, province-level prefix used in registered names ("上海市"), area code
CITIES = [
    ("北京", "北京市", "10"),
    ("上海", "上海市", "21"),
    ("深圳", "深圳市", "755"),
    ("广州", "广州市", "20"),
    ("杭州", "杭州市", "571"),
    ("成都", "成都市", "28"),
    ("南京", "南京市", "25"),
    ("武汉", "武汉市", "27"),
    ("苏州", "苏州市", "512"),
    ("西安", "西安市", "29"),
    ("天津", "天津市", "22"),
    ("重庆", "重庆市", "23"),
]
# Mobile prefixes of the three carriers.
MOBILE_PREFIXES = ["130", "131", "135", "136", "138", "139", "150", "158", "186", "188", "177", "199"]


def person_name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN_NAMES)


def company_name(rng: random.Random, brand: str | None = None) -> str:
    """A registered company name: [城市市] 字号 行业 有限公司, e.g. "深圳市华创科技有限公司"."""
    city = rng.choice(CITIES)[1] if rng.random() < 0.4 else ""
    return f"{city}{brand or rng.choice(BRANDS)}{rng.choice(TRADES)}{rng.choice(FORMS)}"


def mobile(rng: random.Random) -> str:
    """A mainland mobile number as people write it: +86 138 1234 5678."""
    number = f"{rng.randint(0, 99999999):08d}"
    return f"+86 {rng.choice(MOBILE_PREFIXES)} {number[:4]} {number[4:]}"


# Characters trade names are made of (auspicious, common in registered names): two of them make
# a believable brand nobody registered in the demo, for data sets larger than BRANDS.
BRAND_CHARACTERS = "华盛恒通达鑫泰瑞丰宏新源德利嘉信安和金天博远海星润锦佳凯富联智创启明中东正永万卓"


def brand(rng: random.Random) -> str:
    return rng.choice(BRAND_CHARACTERS) + rng.choice(BRAND_CHARACTERS)


# -- the Chinese demo company (chatcrm demo --lang zh) -------------------------------------------

ACCOUNT = "阿克米科技有限公司"
# name, email, role value, timezone (language is "zh" for all)
USERS = [
    ("王芳", "wangfang@demo-zh.chatcrm.example", "admin", "Asia/Shanghai"),
    ("陈建国", "chenjianguo@demo-zh.chatcrm.example", "manager", "Asia/Shanghai"),
    ("李伟", "liwei@demo-zh.chatcrm.example", "sales", "Asia/Shanghai"),
    ("张敏", "zhangmin@demo-zh.chatcrm.example", "sales", "Asia/Shanghai"),
    ("刘洋", "liuyang@demo-zh.chatcrm.example", "sales", "Asia/Shanghai"),
    ("赵静", "zhaojing@demo-zh.chatcrm.example", "support", "Asia/Shanghai"),
    ("孙磊", "sunlei@demo-zh.chatcrm.example", "support", "Asia/Shanghai"),
    ("周晓燕", "zhouxiaoyan@demo-zh.chatcrm.example", "viewer", "Asia/Shanghai"),
]

# The English catalogue's SKUs (so the bundles and the mining are the same), named and priced
# (in fen, CNY) for the Chinese market.
PRODUCTS = [
    ("PRN-100", "激光打印机 Pro", "打印耗材", 259900),
    ("TON-BK", "黑色硒鼓", "打印耗材", 49900),
    ("TON-CL", "彩色硒鼓套装", "打印耗材", 139900),
    ("PAP-A4", "A4 复印纸（5 包/箱）", "打印耗材", 12900),
    ("DRM-100", "成像鼓", "打印耗材", 69900),
    ("LBL-200", "标签打印机", "打印耗材", 89900),
    ("COF-M1", "意式咖啡机", "茶水咖啡", 599900),
    ("COF-B1", "咖啡豆 1 公斤", "茶水咖啡", 16800),
    ("COF-D1", "除垢剂（4 支装）", "茶水咖啡", 9900),
    ("COF-F1", "奶泡机", "茶水咖啡", 39900),
    ("COF-C1", "陶瓷咖啡杯（6 只装）", "茶水咖啡", 19900),
    ("TEA-01", "绿茶礼盒", "茶水咖啡", 12800),
    ("LAP-14", "14 英寸商务笔记本电脑", "IT 设备", 699900),
    ("DCK-01", "USB-C 扩展坞", "IT 设备", 89900),
    ("MOU-01", "无线鼠标", "IT 设备", 12900),
    ("KEY-01", "无线键盘", "IT 设备", 19900),
    ("MON-27", "27 英寸 4K 显示器", "IT 设备", 229900),
    ("HDM-02", "HDMI 线 2 米", "IT 设备", 4900),
    ("ARM-01", "显示器支架", "IT 设备", 39900),
    ("HDS-01", "降噪耳机", "IT 设备", 99900),
    ("CAM-01", "高清摄像头", "IT 设备", 39900),
    ("HUB-01", "USB-C 七合一集线器", "IT 设备", 19900),
    ("SSD-01", "1TB 移动固态硬盘", "IT 设备", 59900),
    ("RTR-01", "Wi-Fi 6 路由器", "IT 设备", 79900),
    ("DSK-01", "电动升降桌", "办公家具", 299900),
    ("CHR-01", "人体工学椅", "办公家具", 199900),
    ("LMP-01", "LED 护眼台灯", "办公家具", 29900),
    ("CAB-01", "文件柜", "办公家具", 99900),
    ("WBD-01", "白板 120×90", "办公家具", 59900),
    ("MRK-01", "白板笔（12 支装）", "办公家具", 3900),
    ("SW-CRM", "chatcrm 席位（1 年）", "软件服务", 198000),
    ("SW-AV", "杀毒软件（10 台设备）", "软件服务", 69900),
    ("SW-OFF", "办公软件授权", "软件服务", 49900),
    ("SW-BKP", "云备份 1TB（1 年）", "软件服务", 59900),
    ("CLN-01", "屏幕清洁套装", "办公用品", 3900),
    ("BAT-01", "5 号电池（24 节）", "办公用品", 5900),
    ("NTB-01", "A5 笔记本（10 本）", "办公用品", 6900),
    ("PEN-01", "中性笔（20 支）", "办公用品", 3900),
    ("ENV-01", "C4 信封（250 个）", "办公用品", 8900),
    ("STP-01", "重型订书机", "办公用品", 12900),
]

NOTES = [
    "电话沟通了续约事宜，客户希望周五前收到报价。",
    "客户想看一下新款打印机的演示。",
    "上一批货到得晚，客户有意见，已答应下次免运费。",
    "一季度预算已批，拍板的是财务总监。",
    "已发送价目表和客户案例。",
    "会谈顺利，下一步先试用 5 个席位。",
    "客户在拿我们和竞品比价。",
    "对售后很满意，可能会给第二个办公室也采购。",
    "电话没人接，已留言，下周再联系。",
    "客户要求以后发票一律开人民币增值税专票。",
]
TICKET_SUBJECTS = [
    "打印机双面打印卡纸",
    "新硒鼓装上后显示没粉",
    "咖啡机漏水",
    "扩展坞不给笔记本充电",
    "显示器在 60Hz 下闪屏",
    "发票抬头开错了",
    "到货少了一件",
    "软件激活码无效",
    "椅子扶手到货就是坏的",
    "申请更改送货日期",
]
DEAL_TITLES = [
    "办公室改造",
    "打印机集中采购",
    "咖啡服务合同",
    "笔记本电脑换新",
    "软件授权续约",
    "新分公司开办",
    "打印托管服务",
    "人体工学升级",
]
LOST_REASON = "客户选了更便宜的报价"
INDUSTRIES = ["制造业", "医疗健康", "零售", "服务业", "酒店餐饮", "科技"]
FIELD_LABELS = {"industry": "行业", "employees": "员工人数", "contract_renewal": "合同续约日期"}
SEGMENTS = {
    "vip-cn": "country=CN tag=vip",
    "high-value-cn": "ltv>=10000 orders>=3",
    "dormant-cn": "last_order>90d",
}


def deal_title(title: str, year: int) -> str:
    return f"{year}年{title}项目"


def landline(rng: random.Random, area_code: str) -> str:
    """A company switchboard: +86 21 6123 4567 (eight digits after a two-digit area code, else seven)."""
    digits = 8 if len(area_code) == 2 else 7
    number = f"{rng.randint(2 * 10 ** (digits - 1), 10**digits - 1)}"
    return f"+86 {area_code} {number[:4]} {number[4:]}"
