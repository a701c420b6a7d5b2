"""Fixed lists the sample draws from: Chinese names, e-mail domains, mobile prefixes, locations, acquisition channels,
product categories, sales teams and campaign channels (with their weights where the draw is not uniform)."""

from __future__ import annotations

SURNAMES = [
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"), ("杨", "yang"), ("黄", "huang"),
    ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"), ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"),
    ("胡", "hu"), ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"), ("郑", "zheng"),
    ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"), ("许", "xu"), ("韩", "han"), ("冯", "feng"),
    ("邓", "deng"), ("曹", "cao"), ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("袁", "yuan"), ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"), ("余", "yu"), ("杜", "du"),
    ("叶", "ye"), ("程", "cheng"), ("苏", "su"), ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"),
    ("沈", "shen"),
]
GIVEN_NAMES = (  # (male, female) given-name characters with pinyin
    [("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"), ("勇", "yong"), ("杰", "jie"),
     ("涛", "tao"), ("明", "ming"), ("超", "chao"), ("刚", "gang"), ("平", "ping"), ("辉", "hui"), ("鹏", "peng"),
     ("华", "hua"), ("飞", "fei"), ("鑫", "xin"), ("波", "bo"), ("斌", "bin"), ("宇", "yu"), ("浩", "hao"),
     ("凯", "kai"), ("健", "jian"), ("俊", "jun"), ("帆", "fan"), ("建", "jian"), ("国", "guo"), ("文", "wen"),
     ("博", "bo"), ("志", "zhi")],
    [("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"), ("艳", "yan"), ("娟", "juan"),
     ("霞", "xia"), ("秀", "xiu"), ("玲", "ling"), ("婷", "ting"), ("雪", "xue"), ("慧", "hui"), ("莹", "ying"),
     ("琳", "lin"), ("颖", "ying"), ("倩", "qian"), ("欣", "xin"), ("佳", "jia"), ("怡", "yi"), ("梅", "mei"),
     ("晶", "jing"), ("红", "hong"), ("燕", "yan"), ("萍", "ping"), ("洁", "jie"), ("琴", "qin"), ("云", "yun"),
     ("璐", "lu"), ("悦", "yue")],
)
EMAIL_DOMAINS = ["qq.com", "163.com", "126.com", "gmail.com", "sina.com", "outlook.com", "foxmail.com",
                 "hotmail.com"]
EMAIL_DOMAIN_P = [0.35, 0.2, 0.1, 0.1, 0.07, 0.08, 0.05, 0.05]
MOBILE_PREFIXES = [130, 131, 132, 133, 135, 136, 137, 138, 139, 150, 151, 152, 155, 156, 157, 158, 159, 177,
                   180, 181, 182, 183, 185, 186, 187, 188, 189, 198, 199]

# (city, province, country, weight)
LOCATIONS = [
    ("上海", "上海", "CN", 8), ("北京", "北京", "CN", 8), ("广州", "广东", "CN", 6), ("深圳", "广东", "CN", 7),
    ("杭州", "浙江", "CN", 5), ("成都", "四川", "CN", 5), ("重庆", "重庆", "CN", 5), ("武汉", "湖北", "CN", 4),
    ("南京", "江苏", "CN", 4), ("苏州", "江苏", "CN", 4), ("西安", "陕西", "CN", 3.5), ("天津", "天津", "CN", 3.5),
    ("长沙", "湖南", "CN", 3), ("郑州", "河南", "CN", 3), ("东莞", "广东", "CN", 2.5), ("青岛", "山东", "CN", 2.5),
    ("沈阳", "辽宁", "CN", 2.5), ("宁波", "浙江", "CN", 2.5), ("昆明", "云南", "CN", 2), ("合肥", "安徽", "CN", 2),
    ("佛山", "广东", "CN", 2), ("福州", "福建", "CN", 2), ("厦门", "福建", "CN", 2), ("济南", "山东", "CN", 2),
    ("大连", "辽宁", "CN", 1.5), ("哈尔滨", "黑龙江", "CN", 1.5), ("长春", "吉林", "CN", 1.2),
    ("南昌", "江西", "CN", 1.2), ("南宁", "广西", "CN", 1.2), ("贵阳", "贵州", "CN", 1), ("石家庄", "河北", "CN", 1.2),
    ("太原", "山西", "CN", 1), ("香港", "香港", "HK", 0.4), ("Singapore", "Singapore", "SG", 0.2),
    ("San Francisco", "California", "US", 0.2),
]
MUNICIPALITIES = {"北京", "上海", "天津", "重庆"}
ACQUISITION_CHANNELS = ["organic_search", "paid_search", "social", "referral", "store", "app_store",
                        "marketplace", "sales"]
ACQUISITION_P = [0.25, 0.15, 0.2, 0.1, 0.15, 0.1, 0.05, 0.0]  # "sales" comes only from won opportunities
SALES_CHANNEL = ACQUISITION_CHANNELS.index("sales")

CATEGORIES = {  # category: (price range CNY, product words)
    "electronics": ((199, 6999), ["蓝牙耳机", "智能手表", "平板电脑", "充电宝", "机械键盘"]),
    "appliances": ((299, 4999), ["空气净化器", "电饭煲", "扫地机器人", "咖啡机", "吹风机"]),
    "apparel": ((59, 899), ["羽绒服", "运动裤", "衬衫", "连衣裙", "卫衣"]),
    "beauty": ((49, 999), ["精华液", "面霜", "口红", "防晒霜", "面膜"]),
    "home": ((29, 1299), ["四件套", "收纳箱", "台灯", "香薰", "抱枕"]),
    "food": ((19, 299), ["坚果礼盒", "茶叶", "咖啡豆", "零食大礼包", "蜂蜜"]),
    "sports": ((49, 1999), ["瑜伽垫", "跑鞋", "哑铃", "骑行服", "登山包"]),
    "books": ((19, 199), ["小说", "童书", "历史读物", "编程教程", "绘本"]),
    "toys": ((29, 699), ["积木", "遥控车", "拼图", "毛绒玩具", "桌游"]),
    "health": ((39, 799), ["维生素", "蛋白粉", "按摩仪", "血压计", "鱼油"]),
}
PRODUCTS_PER_CATEGORY = 20

REP_TEAMS = [  # (team, region, head count)
    ("sales_east", "华东", 5), ("sales_north", "华北", 4), ("sales_south", "华南", 4), ("key_accounts", "全国", 3),
    ("customer_service", "全国", 9),
]
CAMPAIGN_CHANNELS = ["email", "sms", "social", "search", "event"]
CAMPAIGN_CHANNEL_P = [0.5, 0.15, 0.15, 0.1, 0.1]
CAMPAIGN_COST = {"email": (2e3, 2e4), "sms": (5e3, 5e4), "social": (2e4, 2e5), "search": (2e4, 1.5e5),
                 "event": (3e4, 3e5)}
CAMPAIGN_LABEL = {"email": "邮件营销", "sms": "短信营销", "social": "社媒推广", "search": "搜索推广",
                  "event": "线下活动"}
MONTH_THEME = ["新春", "新春", "春季上新", "春季上新", "五一", "618", "暑期", "暑期", "开学季", "国庆", "双11",
               "双12"]
