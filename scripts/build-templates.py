#!/usr/bin/env python3
"""Writes the built-in template packages under builtin-templates/.

The packages are data; this script is how they are made, so that forms and list views follow
every entity's fields and the sample data is the same on every run (a fixed random seed).
Run it after changing anything below: `python3 scripts/build-templates.py`.
"""
import json
import os
import random
import shutil

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "builtin-templates")


def L(en, zh):
    return {"en": en, "zh-CN": zh}


def f(kind, en, zh, **extra):
    prop = {"x-kind": kind, "x-label": L(en, zh)}
    for key, value in extra.items():
        prop[key.replace("_", "-") if key.startswith("x_") else key] = value
    return prop


def options(*items):
    return [{"value": v, "label": L(en, zh)} for v, en, zh in items]


def select(en, zh, *items, **extra):
    return f("select", en, zh, **{"x-options": options(*items)}, **extra)


def lookup(en, zh, target, **extra):
    return f("lookup", en, zh, **{"x-target": target}, **extra)


def money(en, zh, scale_setting, **extra):
    return f("money", en, zh, **{"x-scale": {"$setting": f"decimal_places.{scale_setting}"},
                                 "x-currency": "CNY"}, **extra)


def autonumber(en, zh, pattern):
    return f("autonumber", en, zh, **{"x-pattern": pattern})


def formula(en, zh, expression, result, **extra):
    return f("formula", en, zh, **{"x-formula": expression, "x-result": result}, **extra)


def rollup(en, zh, entity, via, field, op, **extra):
    spec = {"entity": entity, "via": via, "op": op}
    if field:
        spec["field"] = field
    return f("rollup", en, zh, **{"x-rollup": spec}, **extra)


class Entity:
    def __init__(self, name, en, zh, fields, required=(), display=None, owner=("Owner", "负责人"),
                 department=("Department", "负责部门"), description=None):
        self.name = name
        self.label = L(en, zh)
        self.fields = fields  # list of (name, property)
        self.required = list(required)
        self.display = display or fields[0][0]
        self.owner = owner
        self.department = department
        self.description = description

    def document(self):
        doc = {"name": self.name, "label": self.label}
        if self.description:
            doc["description"] = self.description
        doc["schema"] = {
            "x-display-field": self.display,
            "required": self.required,
            "properties": {name: prop for name, prop in self.fields},
        }
        return doc

    def form(self):
        plain, notes, figures = [], [], []
        for name, prop in self.fields:
            kind = prop["x-kind"]
            if kind == "long_text":
                notes.append(name)
            elif kind in ("formula", "rollup", "autonumber") and name != self.display:
                figures.append(name)
            else:
                plain.append(name)
        sections = [{"title": L("Basics", "基本信息"), "columns": 2, "fields": plain}]
        if figures:
            sections.append({"title": L("Figures", "统计"), "columns": 2, "fields": figures})
        if notes:
            sections.append({"title": L("Notes", "说明"), "columns": 1, "fields": notes})
        sections.append({"title": L("Ownership", "负责"), "columns": 2, "fields": [
            {"field": "owner", "label": L(*self.owner)},
            {"field": "department", "label": L(*self.department)},
        ]})
        return {"entity": self.name, "name": "default", "label": self.label, "sections": sections}

    def list_view(self):
        columns = [n for n, p in self.fields if p["x-kind"] not in ("long_text", "multi_lookup")][:7]
        return {"entity": self.name, "name": "all", "label": L("All", "全部") , "kind": "list",
                "columns": columns + ["owner"], "sort": "-created_at", "page_size": 50}


def write_json(path, value):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        json.dump(value, out, ensure_ascii=False, indent=1)
        out.write("\n")


def write_package(name, version, title, description, depends, entities, views=(), roles=(),
                  settings=None, automations=(), mail_templates=(), sample=None):
    folder = os.path.join(ROOT, name)
    shutil.rmtree(folder, ignore_errors=True)
    manifest = {"name": name, "version": version, "title": title, "description": description,
                "depends": list(depends), "entities": [e.name for e in entities]}
    if settings:
        manifest["settings"] = settings
    if sample:
        manifest["sample_data"] = [entity for entity, _ in sample]
    write_json(os.path.join(folder, "manifest.json"), manifest)
    for entity in entities:
        write_json(os.path.join(folder, "entities", f"{entity.name}.json"), entity.document())
    write_json(os.path.join(folder, "forms.json"), [e.form() for e in entities])
    write_json(os.path.join(folder, "views.json"), [e.list_view() for e in entities] + list(views))
    if roles:
        write_json(os.path.join(folder, "roles.json"), list(roles))
    if mail_templates:
        write_json(os.path.join(folder, "mail-templates.json"), list(mail_templates))
    if automations:
        listed = []
        for automation in automations:
            automation = dict(automation)
            script = automation.pop("script")
            file = automation["name"].lower().replace(" ", "-").replace("/", "-") + ".rhai"
            automation["script_file"] = file
            path = os.path.join(folder, "automations", file)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as out:
                out.write(script.strip() + "\n")
            listed.append(automation)
        write_json(os.path.join(folder, "automations.json"), listed)
    for entity, records in sample or ():
        write_json(os.path.join(folder, "sample", f"{entity}.json"), records)


def mail(name, description, en_subject, en_text, zh_subject, zh_text):
    return {"name": name, "description": description, "variants": {
        "en": {"subject": en_subject, "text": en_text},
        "zh-CN": {"subject": zh_subject, "text": zh_text},
    }}


def role(name, en, zh, description, entities, special=()):
    return {"name": name, "label": L(en, zh), "description": description,
            "permissions": {"entities": {e: {"create": "all", "read": "all", "update": "all",
                                             "delete": "all"} for e in entities},
                            "special": list(special)}}


KIND_OF_CONTACT = [("call", "Call", "电话"), ("email", "Email", "邮件"), ("meeting", "Meeting", "会议"),
                   ("visit", "Visit", "拜访")]

# ---- customer ---------------------------------------------------------------------------------

INDUSTRIES = [("manufacturing", "Manufacturing", "制造业"), ("retail", "Retail", "零售"),
              ("it", "Information technology", "信息技术"), ("finance", "Finance", "金融"),
              ("healthcare", "Healthcare", "医疗"), ("education", "Education", "教育"),
              ("logistics", "Logistics", "物流"), ("other", "Other", "其他")]
REGIONS = [("east", "East China", "华东"), ("north", "North China", "华北"),
           ("south", "South China", "华南"), ("central", "Central China", "华中"),
           ("west", "West China", "西部"), ("overseas", "Overseas", "海外")]

customer = Entity("customer", "Customer", "客户", [
    ("name", f("text", "Customer name", "客户名称", **{"x-indexed": True})),
    ("mnemonic", f("text", "Mnemonic code", "助记码", maxLength=50, **{"x-indexed": True})),
    ("code", autonumber("Customer number", "客户编号", "CUS-{000000}")),
    ("level", select("Customer level", "客户级别", ("A", "A – key account", "A 重点客户"),
                     ("B", "B – regular", "B 普通客户"), ("C", "C – occasional", "C 一般客户"))),
    ("type", select("Customer type", "客户类型", ("enterprise", "Enterprise", "企业"),
                    ("government", "Government", "政府机构"), ("distributor", "Distributor", "经销商"),
                    ("individual", "Individual", "个人"))),
    ("status", select("Customer status", "客户状态", ("active", "Active", "正常"),
                      ("dormant", "Dormant", "休眠"), ("lost", "Lost", "流失"), default="active")),
    ("credit_rating", select("Credit rating", "信用等级", ("AAA", "AAA", "AAA"), ("AA", "AA", "AA"),
                             ("A", "A", "A"), ("B", "B", "B"), ("C", "C", "C"))),
    ("credit_limit", money("Credit limit", "信用额度", "orders", minimum=0)),
    ("parent", lookup("Parent company", "上级单位", "customer")),
    ("lifecycle_stage", select("Lifecycle stage", "生命周期阶段", ("potential", "Potential", "潜在客户"),
                               ("intent", "Intent", "意向客户"), ("deal", "Deal", "成交客户"),
                               ("loyal", "Loyal", "忠诚客户"), default="potential")),
    ("industry", select("Industry", "所属行业", *INDUSTRIES)),
    ("region", select("Region", "所在地区", *REGIONS)),
    ("city", f("text", "City", "所在城市", maxLength=50, **{"x-indexed": True})),
    ("address", f("text", "Office address", "办公地址")),
    ("postal_code", f("text", "Postal code", "邮政编码", maxLength=20)),
    ("phone", f("phone", "Main phone", "主要电话", **{"x-indexed": True})),
    ("finance_phone", f("phone", "Finance phone", "财务电话")),
    ("email", f("email", "Email", "电子邮箱")),
    ("website", f("url", "Website", "公司主页")),
    ("registered_on", f("date", "Registered on", "注册时间")),
    ("possible_duplicate", lookup("Possible duplicate of", "疑似重复", "customer")),
    ("notes", f("long_text", "Notes", "备注")),
], required=["name"])

contact = Entity("contact", "Contact", "联系人", [
    ("name", f("text", "Name", "姓名", **{"x-indexed": True})),
    ("customer", lookup("Customer", "所属客户", "customer")),
    ("gender", select("Gender", "性别", ("male", "Male", "男"), ("female", "Female", "女"))),
    ("age", f("integer", "Age", "年龄", minimum=0, maximum=150)),
    ("department_name", f("text", "Department", "所在部门")),
    ("job_title", f("text", "Job title", "职务")),
    ("manager", lookup("Reports to", "上级主管", "contact")),
    ("office_phone", f("phone", "Office phone", "办公电话")),
    ("mobile", f("phone", "Mobile", "移动电话", **{"x-indexed": True})),
    ("email", f("email", "Email", "电子邮箱")),
    ("home_phone", f("phone", "Home phone", "住宅电话")),
    ("fax", f("phone", "Fax", "传真号码")),
    ("birthday", f("date", "Birthday", "生日")),
    ("hobbies", f("text", "Hobbies", "个人爱好")),
    ("notes", f("long_text", "Notes", "备注")),
], required=["name"], owner=("Responsible employee", "负责员工"))

communication = Entity("communication", "Communication", "沟通记录", [
    ("subject", f("text", "Subject", "主题")),
    ("kind", select("Channel", "沟通方式", *KIND_OF_CONTACT)),
    ("customer", lookup("Customer", "客户", "customer")),
    ("contact", lookup("Contact", "联系人", "contact")),
    ("occurred_at", f("datetime", "Time", "沟通时间")),
    ("next_follow_up", f("date", "Next follow-up", "下次跟进日期")),
    ("notes", f("long_text", "Notes", "沟通内容")),
], required=["subject", "kind"])

product = Entity("product", "Product", "产品", [
    ("name", f("text", "Product name", "产品名称")),
    ("code", f("text", "Product code", "产品编号", maxLength=40, **{"x-unique": True})),
    ("category", select("Category", "产品类别", ("hardware", "Hardware", "硬件"),
                        ("software", "Software", "软件"), ("consumables", "Consumables", "耗材"),
                        ("services", "Services", "服务"))),
    ("kind", select("Kind", "产品性质", ("own_made", "Own-made", "自制产品"),
                    ("purchased", "Purchased", "外购产品"), ("consignment", "Consignment", "代销产品"),
                    ("training", "Training", "培训"), ("service", "Service", "服务"))),
    ("unit", f("text", "Unit", "单位", maxLength=20)),
    ("price", money("Price", "单价", "products", minimum=0)),
    ("on_sale", f("boolean", "On sale", "在售", default=True)),
    ("description", f("long_text", "Description", "产品说明")),
], required=["name", "code"], description=L(
    "Tangible and intangible products: own-made, purchased, consignment, training and services.",
    "企业的有形与无形产品：自制、外购、代销产品，以及培训、服务。"))

# ---- sample data: names, companies, places ------------------------------------------------

rng = random.Random(20261122)

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
         "超", "秀英", "霞", "平", "刚", "桂英", "建华", "志强", "晓东", "海燕", "文博", "思远", "雨桐",
         "子涵", "浩然", "梓萱", "一鸣", "佳怡", "俊杰", "欣怡", "宇航", "诗涵"]
EN_FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "David",
            "Elizabeth", "William", "Susan", "Richard", "Jessica", "Thomas", "Sarah", "Daniel",
            "Karen", "Matthew", "Emily", "Anthony", "Olivia", "Mark", "Sophie", "Paul", "Emma"]
EN_LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Miller", "Davis", "Wilson",
           "Anderson", "Taylor", "Thomas", "Moore", "Martin", "Jackson", "Thompson", "White",
           "Harris", "Clark", "Lewis", "Walker", "Hall", "Young", "King", "Wright", "Green"]
CITIES = [("上海", "east", "200000", "021"), ("杭州", "east", "310000", "0571"),
          ("南京", "east", "210000", "025"), ("苏州", "east", "215000", "0512"),
          ("北京", "north", "100000", "010"), ("天津", "north", "300000", "022"),
          ("广州", "south", "510000", "020"), ("深圳", "south", "518000", "0755"),
          ("武汉", "central", "430000", "027"), ("长沙", "central", "410000", "0731"),
          ("成都", "west", "610000", "028"), ("重庆", "west", "400000", "023")]
EN_CITIES = [("Singapore", "overseas", "018989", "+65"), ("London", "overseas", "EC1A 1BB", "+44"),
             ("Hamburg", "overseas", "20095", "+49"), ("San Jose", "overseas", "95113", "+1 408")]
CN_WORDS = ["华东", "恒信", "瑞丰", "汇通", "宏达", "金桥", "新锐", "中科", "天成", "远航", "博雅", "鼎盛",
            "永安", "海川", "嘉禾", "长青", "东方", "锦程", "联创", "星辰"]
CN_SUFFIX = {"manufacturing": "精密制造有限公司", "retail": "商贸有限公司", "it": "信息技术有限公司",
             "finance": "投资管理有限公司", "healthcare": "医疗器械有限公司", "education": "教育科技有限公司",
             "logistics": "物流有限公司", "other": "实业有限公司"}
EN_WORDS = ["Northwind", "Bluewater", "Summit", "Evergreen", "Harbor", "Pioneer", "Silverline",
            "Crescent", "Atlas", "Keystone"]
EN_SUFFIX = {"manufacturing": "Precision Ltd.", "retail": "Trading Pte. Ltd.",
             "it": "Systems Ltd.", "finance": "Capital LLP", "healthcare": "Medical GmbH",
             "education": "Learning Inc.", "logistics": "Logistics Inc.", "other": "Holdings Ltd."}
STREETS = ["世纪大道", "南京西路", "中山路", "人民路", "解放路", "建设路", "和平路", "科技园路", "滨江大道", "长江路"]
HOBBIES = ["高尔夫", "摄影", "登山", "茶艺", "书法", "钓鱼", "跑步", "阅读", "Tennis", "Sailing", "Jazz"]
TITLES = [("总经理", "管理层"), ("采购经理", "采购部"), ("财务总监", "财务部"), ("技术总监", "技术部"),
          ("销售经理", "销售部"), ("行政主管", "行政部"), ("IT 经理", "信息部"), ("Procurement Lead", "Purchasing"),
          ("CFO", "Finance")]


def cn_person():
    return rng.choice(SURNAMES) + rng.choice(GIVEN)


def en_person():
    return f"{rng.choice(EN_FIRST)} {rng.choice(EN_LAST)}"


def mobile():
    return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))


def pick(items):
    return rng.choice(items)


customers, contacts, communications, products = [], [], [], []
used_names = set()
for i in range(60):
    industry = pick(INDUSTRIES)[0]
    overseas = i % 10 == 9
    if overseas:
        city, region, postal, area = pick(EN_CITIES)
        while True:
            name = f"{pick(EN_WORDS)} {EN_SUFFIX[industry]}"
            if name not in used_names:
                break
        phone = f"{area} {rng.randint(6000, 9999)} {rng.randint(1000, 9999)}"
        address = f"{rng.randint(1, 200)} {pick(['Market Street', 'Harbour Road', 'King Street', 'Park Avenue'])}"
    else:
        city, region, postal, area = pick(CITIES)
        while True:
            name = f"{city}{pick(CN_WORDS)}{CN_SUFFIX[industry]}"
            if name not in used_names:
                break
        phone = f"{area}-{rng.randint(5000_0000, 8999_9999)}"
        address = f"{city}市{pick(STREETS)}{rng.randint(1, 999)}号"
    used_names.add(name)
    key = f"customer:{i + 1:03d}"
    stage = rng.choices(["potential", "intent", "deal", "loyal"], [3, 3, 3, 1])[0]
    record = {
        "$key": key, "name": name, "mnemonic": "".join(w[0] for w in name.split()[:3]).upper()
        if overseas else f"C{i + 1:03d}",
        "level": rng.choices(["A", "B", "C"], [2, 5, 3])[0],
        "type": rng.choices(["enterprise", "government", "distributor", "individual"], [6, 1, 2, 1])[0],
        "status": rng.choices(["active", "dormant", "lost"], [8, 1, 1])[0],
        "credit_rating": pick(["AAA", "AA", "A", "B", "C"]),
        "credit_limit": str(rng.randint(1, 100) * 10000),
        "lifecycle_stage": stage, "industry": industry, "region": region, "city": city,
        "address": address, "postal_code": postal, "phone": phone,
        "finance_phone": phone[:-1] + str((int(phone[-1]) + 1) % 10),
        "email": f"info{i + 1}@customer{i + 1}.example.com",
        "website": f"https://www.customer{i + 1}.example.com",
        "registered_on": {"$days": -rng.randint(30, 2000)},
        "tags": rng.sample(["vip", "key-account", "new", "partner"], rng.randint(0, 2)),
    }
    if i >= 10 and i % 7 == 0:
        record["parent"] = {"$ref": f"customer:{rng.randint(1, 10):03d}"}
    customers.append(record)

for i in range(120):
    customer_no = i % 60 + 1
    overseas = customer_no % 10 == 0
    name = en_person() if overseas else cn_person()
    title, dept = pick(TITLES)
    age = rng.randint(26, 60)
    record = {
        "$key": f"contact:{i + 1:03d}", "name": name,
        "customer": {"$ref": f"customer:{customer_no:03d}"},
        "gender": pick(["male", "female"]), "age": age, "department_name": dept, "job_title": title,
        "office_phone": f"021-{rng.randint(5000_0000, 8999_9999)}", "mobile": mobile(),
        "email": f"contact{i + 1}@customer{customer_no}.example.com",
        "birthday": {"$days": rng.randint(-180, 180), "years": -age},
        "hobbies": pick(HOBBIES),
    }
    if i % 5 == 0:
        record["home_phone"] = f"021-{rng.randint(5000_0000, 8999_9999)}"
    if i % 4 == 0:
        record["fax"] = f"021-{rng.randint(5000_0000, 8999_9999)}"
    if i >= 60:
        record["manager"] = {"$ref": f"contact:{customer_no:03d}"}
    contacts.append(record)

SUBJECTS = [("电话沟通报价细节", "call"), ("发送产品资料", "email"), ("季度业务回顾会议", "meeting"),
            ("上门拜访演示", "visit"), ("Follow-up on proposal", "email"), ("确认交付时间", "call"),
            ("Contract renewal meeting", "meeting"), ("技术方案交流", "visit")]
for i in range(80):
    contact_no = rng.randint(1, 120)
    customer_no = (contact_no - 1) % 60 + 1
    subject, kind = pick(SUBJECTS)
    record = {"subject": subject, "kind": kind,
              "customer": {"$ref": f"customer:{customer_no:03d}"},
              "contact": {"$ref": f"contact:{contact_no:03d}"},
              "occurred_at": {"$days": -rng.randint(0, 120), "time": f"{rng.randint(9, 17):02d}:{pick(['00', '15', '30', '45'])}"},
              "notes": "客户对方案总体满意，需要进一步确认价格与交付周期。"}
    if i % 3 == 0:
        record["next_follow_up"] = {"$days": rng.randint(1, 21)}
    communications.append(record)

PRODUCTS = [
    ("工业控制器 IC-200", "hardware", "own_made", "台", 12800), ("智能传感器 S-10", "hardware", "own_made", "个", 860),
    ("数据采集网关 G3", "hardware", "own_made", "台", 5600), ("伺服电机 SM-750", "hardware", "purchased", "台", 3900),
    ("工业交换机 8 口", "hardware", "purchased", "台", 2300), ("CRM 专业版授权", "software", "own_made", "用户/年", 1200),
    ("MES 生产管理系统", "software", "own_made", "套", 198000), ("BI 报表模块", "software", "consignment", "套", 36000),
    ("打印耗材套装", "consumables", "consignment", "箱", 420), ("防静电包装袋", "consumables", "purchased", "包", 95),
    ("设备操作培训", "services", "training", "人天", 1500), ("管理层数字化培训", "services", "training", "场", 18000),
    ("年度维保服务", "services", "service", "年", 24000), ("上门安装调试", "services", "service", "次", 3000),
    ("远程技术支持", "services", "service", "月", 2000), ("Edge Gateway E5", "hardware", "purchased", "unit", 7400),
    ("Analytics Cloud Seat", "software", "consignment", "seat/yr", 2600), ("Spare Parts Kit", "consumables", "own_made", "kit", 780),
    ("On-site Audit", "services", "service", "day", 6800), ("Safety Training", "services", "training", "session", 9000),
]
for i, (name, category, kind, unit, price) in enumerate(PRODUCTS):
    products.append({"$key": f"product:{i + 1:03d}", "name": name, "code": f"P-{i + 1:04d}",
                     "category": category, "kind": kind, "unit": unit, "price": f"{price}.00",
                     "on_sale": i != 9})

customer_views = [
    {"entity": "customer", "name": "key_accounts", "label": L("Key accounts (level A)", "重点客户（A 级）"),
     "kind": "list", "filter": 'level = "A"', "columns": ["name", "code", "industry", "city", "credit_limit", "owner"],
     "sort": "name"},
    {"entity": "customer", "name": "by_industry", "label": L("Grouped by industry", "按行业分组"), "kind": "list",
     "columns": ["industry", "name", "city", "level", "lifecycle_stage", "owner"], "sort": "industry,name"},
    {"entity": "customer", "name": "by_region", "label": L("Grouped by region", "按地区分组"), "kind": "list",
     "columns": ["region", "city", "name", "level", "owner"], "sort": "region,city,name"},
    {"entity": "customer", "name": "manufacturing", "label": L("Manufacturing", "制造业客户"), "kind": "list",
     "filter": 'industry = "manufacturing"', "columns": ["name", "city", "level", "lifecycle_stage", "owner"]},
    {"entity": "customer", "name": "east_china", "label": L("East China", "华东客户"), "kind": "list",
     "filter": 'region = "east"', "columns": ["name", "city", "industry", "level", "owner"]},
    {"entity": "customer", "name": "lifecycle", "label": L("Lifecycle board", "生命周期看板"), "kind": "kanban",
     "group_by": "lifecycle_stage", "card_fields": ["name", "city", "level"], "sum": "credit_limit"},
    {"entity": "customer", "name": "possible_duplicates", "label": L("Possible duplicates", "疑似重复客户"),
     "kind": "list", "filter": "possible_duplicate != null", "columns": ["name", "phone", "possible_duplicate", "owner"]},
    {"entity": "contact", "name": "birthdays", "label": L("Birthdays", "生日日历"), "kind": "calendar",
     "date_field": "birthday", "title_field": "name"},
    {"entity": "communication", "name": "follow_ups", "label": L("Follow-up calendar", "跟进日历"), "kind": "calendar",
     "date_field": "next_follow_up", "title_field": "subject", "filter": "next_follow_up != null"},
]

BIRTHDAY_SCRIPT = r'''
// Mails each contact's responsible employee when the contact's birthday is exactly
// `birthday_reminder_days` days away (the settings), in the configured time zone.
let ahead = settings::get("birthday_reminder_days");
let sent = 0;
let wanted = "birthday != null && owner != null";
let filter = wanted;
loop {
    let page = records::find("contact", filter, #{ sort: "id", limit: 500 });
    let last = "";
    for c in page {
        let next = next_anniversary(c.birthday);
        if days_until(next) == ahead {
            mail::send(#{ to: c.owner, template: "birthday_reminder",
                          data: #{ name: c.name, date: next, days: ahead, mobile: c.mobile,
                                   email: c.email } });
            sent += 1;
        }
        last = c.id;
    }
    if page.len() < 500 { break; }
    filter = `${wanted} && id > "${last}"`;
}
log(`${sent} birthday reminders`);
sent
'''

DUPLICATE_SCRIPT = r'''
// Warns when a new customer has the name or main phone of another one: marks it and tells
// the owner. Nothing is refused; someone decides whether to merge.
fn quoted(text) {
    let t = text;
    t.replace("\\", "\\\\");
    t.replace("\"", "\\\"");
    `"${t}"`
}
let tests = [`name = ${quoted(record.name)}`];
if record.phone != () { tests.push(`phone = ${quoted(record.phone)}`); }
let filter = `id != "${record.id}" && (${tests.reduce(|sum, t| if sum == "" { t } else { sum + " || " + t }, "")})`;
let same = records::find("customer", filter, #{ limit: 5 });
if same.len() > 0 {
    records::update("customer", record.id, #{ possible_duplicate: same[0].id });
    if record.owner != () {
        mail::send(#{ to: record.owner, template: "duplicate_customer",
                      data: #{ name: record.name, other: same[0].name, code: same[0].code } });
    }
    log(`possible duplicate of ${same[0].code}`);
}
same.len()
'''

write_package(
    "customer", "1.0.0", L("Customers", "客户管理"),
    L("Customers with every field of the requirement, contacts, communication records, products, "
      "groups as saved views, lifecycle stages, birthday reminders and duplicate warnings.",
      "客户（需求文档所列全部字段）、联系人、沟通记录、产品，按行业/地区/级别分组的视图，"
      "生命周期阶段，生日提醒与重复客户提醒。"),
    [], [customer, contact, communication, product], views=customer_views,
    roles=[role("customer_admin", "Customer administrator", "客户管理员",
                "Maintains every customer, contact and product.",
                ["customer", "contact", "communication", "product"], ["export", "import", "merge", "bulk"])],
    settings={"birthday_reminder_days": 7},
    mail_templates=[
        mail("birthday_reminder", "To the responsible employee, before a contact's birthday",
             "Birthday in {{days}} days: {{name}}",
             "{{name}} has a birthday on {{date date}} (in {{days}} days).\nMobile: {{mobile}}\nEmail: {{email}}\n",
             "生日提醒：{{name}} 将在 {{days}} 天后过生日",
             "{{name}} 的生日是 {{date date \"%Y年%m月%d日\"}}（{{days}} 天后）。\n移动电话：{{mobile}}\n电子邮箱：{{email}}\n"),
        mail("duplicate_customer", "To the owner of a new customer that looks like an existing one",
             "Possible duplicate customer: {{name}}",
             "The new customer {{name}} has the name or phone of {{other}} ({{code}}). Merge them if they are the same.\n",
             "疑似重复客户：{{name}}",
             "新客户 {{name}} 与已有客户 {{other}}（{{code}}）名称或电话相同，如为同一客户请合并。\n"),
    ],
    automations=[
        {"name": "Birthday reminder", "description": "Daily at 08:00: contacts whose birthday is N days away (N = birthday_reminder_days).",
         "trigger": {"type": "cron", "cron": "0 8 * * *"}, "script": BIRTHDAY_SCRIPT},
        {"name": "Duplicate customer warning", "description": "On create: same name or main phone as another customer.",
         "trigger": {"type": "record", "entity": "customer", "events": ["created"]}, "script": DUPLICATE_SCRIPT},
    ],
    sample=[("product", products), ("customer", customers), ("contact", contacts),
            ("communication", communications)],
)

# ---- sales ----------------------------------------------------------------------------------

STAGES = [("qualification", "Qualification (10%)", "资格确认（10%）"), ("needs_analysis", "Needs analysis (30%)", "需求分析（30%）"),
          ("proposal", "Proposal (60%)", "方案报价（60%）"), ("negotiation", "Negotiation (80%)", "商务谈判（80%）"),
          ("won", "Won (100%)", "赢单（100%）"), ("lost", "Lost (0%)", "输单（0%）")]
PROBABILITY = ('if(stage = "qualification", 10, if(stage = "needs_analysis", 30, if(stage = "proposal", 60, '
               'if(stage = "negotiation", 80, if(stage = "won", 100, 0)))))')

lead = Entity("lead", "Lead", "销售线索", [
    ("name", f("text", "Name", "姓名")),
    ("company", f("text", "Company", "公司")),
    ("phone", f("phone", "Phone", "电话")),
    ("email", f("email", "Email", "电子邮箱")),
    ("source", select("Source", "线索来源", ("website", "Website", "官网"), ("referral", "Referral", "转介绍"),
                      ("exhibition", "Exhibition", "展会"), ("advertising", "Advertising", "广告"),
                      ("cold_call", "Cold call", "电话开发"), ("other", "Other", "其他"))),
    ("status", select("Status", "线索状态", ("new", "New", "新线索"), ("contacted", "Contacted", "已联系"),
                      ("qualified", "Qualified", "已确认"), ("converted", "Converted", "已转化"),
                      ("disqualified", "Disqualified", "无效"), default="new")),
    ("score", f("integer", "Score", "线索评分", minimum=0, maximum=100)),
    ("customer", lookup("Converted to customer", "转化客户", "customer")),
    ("notes", f("long_text", "Notes", "备注")),
], required=["name"])

opportunity = Entity("opportunity", "Opportunity", "销售机会", [
    ("name", f("text", "Opportunity", "机会名称")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("contact", lookup("Contact", "联系人", "contact")),
    ("amount", money("Expected amount", "预计金额", "orders", minimum=0)),
    ("stage", select("Stage", "销售阶段", *STAGES, default="qualification")),
    ("probability", formula("Win probability (%)", "赢单概率（%）", PROBABILITY, "integer")),
    ("weighted_amount", formula("Weighted amount", "加权金额", "round(amount * probability / 100, 2)", "decimal")),
    ("expected_close", f("date", "Expected close", "预计成交日期")),
    ("next_follow_up", f("date", "Next follow-up", "下次跟进日期")),
    ("lost_reason", f("text", "Lost reason", "输单原因")),
    ("needs", f("long_text", "Needs", "客户需求")),
], required=["name", "customer", "stage"])

follow_up = Entity("follow_up", "Follow-up", "跟进记录", [
    ("subject", f("text", "Subject", "跟进主题")),
    ("opportunity", lookup("Opportunity", "销售机会", "opportunity")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("kind", select("Channel", "跟进方式", *KIND_OF_CONTACT)),
    ("occurred_at", f("datetime", "Time", "跟进时间")),
    ("next_follow_up", f("date", "Next follow-up", "下次跟进日期")),
    ("notes", f("long_text", "Notes", "跟进内容")),
], required=["subject"])

quote = Entity("quote", "Quote", "报价单", [
    ("number", autonumber("Quote number", "报价单号", "QT-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("opportunity", lookup("Opportunity", "销售机会", "opportunity")),
    ("contact", lookup("Contact", "联系人", "contact")),
    ("quote_date", f("date", "Quote date", "报价日期")),
    ("valid_until", f("date", "Valid until", "有效期至")),
    ("status", select("Status", "状态", ("draft", "Draft", "草稿"), ("sent", "Sent", "已发送"),
                      ("accepted", "Accepted", "已接受"), ("rejected", "Rejected", "已拒绝"), default="draft")),
    ("total", rollup("Total", "报价总额", "quote_line", "quote", "amount", "sum")),
    ("notes", f("long_text", "Notes", "备注")),
], required=["customer"], display="number")

quote_line = Entity("quote_line", "Quote line", "报价明细", [
    ("quote", lookup("Quote", "报价单", "quote")),
    ("product", lookup("Product", "产品", "product")),
    ("description", f("text", "Description", "说明")),
    ("quantity", f("decimal", "Quantity", "数量", **{"x-scale": 2}, minimum=0)),
    ("unit_price", money("Unit price", "单价", "quotes", minimum=0)),
    ("amount", formula("Amount", "金额", "round(quantity * unit_price, 2)", "decimal")),
], required=["quote", "quantity", "unit_price"], display="description")

contract = Entity("contract", "Contract", "合同", [
    ("title", f("text", "Title", "合同名称")),
    ("number", autonumber("Contract number", "合同编号", "CT-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("amount", money("Amount", "合同金额", "contracts", minimum=0)),
    ("sign_date", f("date", "Signed on", "签订日期")),
    ("start_date", f("date", "Starts", "开始日期")),
    ("end_date", f("date", "Expires", "到期日期")),
    ("status", select("Status", "合同状态", ("draft", "Draft", "草拟"), ("active", "Active", "执行中"),
                      ("expired", "Expired", "已到期"), ("terminated", "Terminated", "已终止"), default="draft")),
    ("content", f("long_text", "Content", "合同内容")),
], required=["title", "customer"])

order = Entity("order", "Sales order", "销售订单", [
    ("number", autonumber("Order number", "订单编号", "SO-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("contract", lookup("Contract", "合同", "contract")),
    ("order_date", f("date", "Order date", "下单日期")),
    ("status", select("Status", "订单状态", ("draft", "Draft", "草稿"), ("approved", "Approved", "已审批"),
                      ("shipped", "Shipped", "已发货"), ("settled", "Settled", "已结算"),
                      ("cancelled", "Cancelled", "已取消"), default="draft")),
    ("total", rollup("Total", "订单金额", "order_line", "order", "amount", "sum")),
    ("approved_at", f("datetime", "Approved at", "审批时间")),
    ("shipped_on", f("date", "Shipped on", "发货日期")),
    ("notes", f("long_text", "Notes", "备注")),
], required=["customer"], display="number")

order_line = Entity("order_line", "Order line", "订单明细", [
    ("order", lookup("Order", "订单", "order")),
    ("product", lookup("Product", "产品", "product")),
    ("description", f("text", "Description", "说明")),
    ("quantity", f("decimal", "Quantity", "数量", **{"x-scale": 2}, minimum=0)),
    ("unit_price", money("Unit price", "单价", "orders", minimum=0)),
    ("amount", formula("Amount", "金额", "round(quantity * unit_price, 2)", "decimal")),
], required=["order", "quantity", "unit_price"], display="description")

receivable = Entity("receivable", "Receivable", "应收款", [
    ("number", autonumber("Number", "应收单号", "AR-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("order", lookup("Order", "订单", "order")),
    ("contract", lookup("Contract", "合同", "contract")),
    ("due_date", f("date", "Due date", "到期日")),
    ("amount", money("Amount", "应收金额", "orders", minimum=0)),
    ("paid", money("Paid", "已收金额", "orders", minimum=0, default="0")),
    ("balance", formula("Balance", "未收余额", "amount - coalesce(paid, 0)", "decimal")),
    ("status", select("Status", "收款状态", ("open", "Open", "未收款"), ("partial", "Partly paid", "部分收款"),
                      ("paid", "Paid", "已收清"), ("overdue", "Overdue", "逾期"), default="open")),
], required=["customer", "due_date", "amount"], display="number")

sales_target = Entity("sales_target", "Sales target", "销售目标", [
    ("name", f("text", "Name", "目标名称")),
    ("salesperson", f("user", "Salesperson", "销售人员")),
    ("period", f("text", "Period", "考核期间", maxLength=20)),
    ("period_start", f("date", "From", "开始日期")),
    ("period_end", f("date", "To", "结束日期")),
    ("target_amount", money("Target", "目标金额", "orders", minimum=0)),
], required=["name", "salesperson", "period"])

sales_entities = [lead, opportunity, follow_up, quote, quote_line, contract, order, order_line,
                  receivable, sales_target]

rng = random.Random(3)
leads, opportunities, follow_ups, quotes, quote_lines = [], [], [], [], []
contracts, orders, order_lines, receivables = [], [], [], []
for i in range(60):
    overseas = i % 8 == 7
    leads.append({
        "name": en_person() if overseas else cn_person(),
        "company": f"{pick(EN_WORDS)} {EN_SUFFIX[pick(INDUSTRIES)[0]]}" if overseas
        else f"{pick(CITIES)[0]}{pick(CN_WORDS)}{CN_SUFFIX[pick(INDUSTRIES)[0]]}",
        "phone": mobile(), "email": f"lead{i + 1}@prospect{i + 1}.example.com",
        "source": pick(["website", "referral", "exhibition", "advertising", "cold_call", "other"]),
        "status": rng.choices(["new", "contacted", "qualified", "converted", "disqualified"], [4, 3, 2, 1, 1])[0],
        "score": rng.randint(10, 95),
    })
for i in range(50):
    c = rng.randint(1, 60)
    stage = rng.choices([s[0] for s in STAGES], [3, 3, 3, 2, 2, 1])[0]
    record = {"$key": f"opportunity:{i + 1:03d}", "name": pick(["MES 升级项目", "传感器批量采购", "年度维保续签",
                                                                   "CRM 扩容", "产线自动化改造", "Analytics rollout",
                                                                   "培训服务采购", "网关替换项目"]) + f" #{i + 1}",
              "customer": {"$ref": f"customer:{c:03d}"}, "contact": {"$ref": f"contact:{c:03d}"},
              "amount": f"{rng.randint(2, 300) * 1000}.00", "stage": stage,
              "expected_close": {"$days": rng.randint(-30, 120)}}
    if stage not in ("won", "lost"):
        record["next_follow_up"] = {"$days": rng.randint(0, 14)}
    if stage == "lost":
        record["lost_reason"] = pick(["价格偏高", "选择了竞争对手", "预算取消", "Timing"])
    opportunities.append(record)
for i in range(60):
    o = rng.randint(1, 50)
    follow_ups.append({"subject": pick(["电话确认需求", "发送报价", "现场演示", "商务谈判", "Send revised proposal"]),
                       "opportunity": {"$ref": f"opportunity:{o:03d}"}, "kind": pick([k[0] for k in KIND_OF_CONTACT]),
                       "occurred_at": {"$days": -rng.randint(0, 60), "time": "10:00"},
                       "notes": "已与客户沟通，等待反馈。"})
for i in range(15):
    c = rng.randint(1, 60)
    quotes.append({"$key": f"quote:{i + 1:03d}", "customer": {"$ref": f"customer:{c:03d}"},
                   "quote_date": {"$days": -rng.randint(0, 40)}, "valid_until": {"$days": rng.randint(5, 40)},
                   "status": pick(["draft", "sent", "accepted", "rejected"])})
    for _ in range(rng.randint(1, 4)):
        p = rng.randint(1, len(PRODUCTS))
        quote_lines.append({"quote": {"$ref": f"quote:{i + 1:03d}"}, "product": {"$ref": f"product:{p:03d}"},
                            "description": PRODUCTS[p - 1][0], "quantity": str(rng.randint(1, 20)),
                            "unit_price": f"{PRODUCTS[p - 1][4]}.00"})
for i in range(20):
    c = rng.randint(1, 60)
    start = -rng.randint(0, 300)
    contracts.append({"$key": f"contract:{i + 1:03d}", "title": f"{pick(['产品购销合同', '年度服务合同', '软件许可合同', 'Supply agreement'])} {2026}-{i + 1:02d}",
                      "customer": {"$ref": f"customer:{c:03d}"}, "amount": f"{rng.randint(5, 500) * 1000}.00",
                      "sign_date": {"$days": start - 5}, "start_date": {"$days": start},
                      "end_date": {"$days": start + 365 if i % 5 else 30},
                      "status": "active" if i % 6 else "draft",
                      "content": "甲乙双方本着平等互利的原则，就产品供应与服务达成如下协议……"})
for i in range(30):
    c = (i * 7) % 60 + 1
    status = rng.choices(["draft", "approved", "shipped", "settled", "cancelled"], [2, 2, 2, 3, 1])[0]
    record = {"$key": f"order:{i + 1:03d}", "customer": {"$ref": f"customer:{c:03d}"},
              "order_date": {"$days": -rng.randint(0, 90)}, "status": status}
    if i < 20:
        record["contract"] = {"$ref": f"contract:{i + 1:03d}"}
    orders.append(record)
    for _ in range(rng.randint(1, 4)):
        p = rng.randint(1, len(PRODUCTS))
        order_lines.append({"order": {"$ref": f"order:{i + 1:03d}"}, "product": {"$ref": f"product:{p:03d}"},
                            "description": PRODUCTS[p - 1][0], "quantity": str(rng.randint(1, 10)),
                            "unit_price": f"{PRODUCTS[p - 1][4]}.00"})
    if status in ("shipped", "settled", "approved"):
        amount = rng.randint(1, 200) * 1000
        paid = amount if status == "settled" else rng.choice([0, amount // 2])
        receivables.append({"customer": {"$ref": f"customer:{c:03d}"}, "order": {"$ref": f"order:{i + 1:03d}"},
                            "due_date": {"$days": rng.randint(-10, 30)}, "amount": f"{amount}.00",
                            "paid": f"{paid}.00",
                            "status": "paid" if paid == amount else ("partial" if paid else "open")})
targets = []
for q, (start, end) in enumerate([(-60, 30), (31, 121)]):
    for name in ["华东区", "华北区", "华南区", "海外"]:
        targets.append({"name": f"{name} Q{q + 1}", "salesperson": {"$installer": True}, "period": f"2026-Q{q + 4 if q == 0 else 1}",
                        "period_start": {"$days": start}, "period_end": {"$days": end},
                        "target_amount": f"{rng.randint(50, 300) * 10000}.00"})

sales_views = [
    {"entity": "opportunity", "name": "pipeline", "label": L("Pipeline", "销售漏斗"), "kind": "kanban",
     "group_by": "stage", "card_fields": ["name", "customer", "amount", "expected_close"], "sum": "amount",
     "filter": 'stage != "lost"'},
    {"entity": "opportunity", "name": "closing_soon", "label": L("Closing this month", "本月预计成交"), "kind": "list",
     "filter": 'expected_close >= @today && expected_close <= @today + 30d && !(stage in ["won", "lost"])',
     "columns": ["name", "customer", "amount", "stage", "probability", "expected_close", "owner"], "sort": "expected_close"},
    {"entity": "opportunity", "name": "follow_up_calendar", "label": L("Follow-up calendar", "跟进日历"), "kind": "calendar",
     "date_field": "next_follow_up", "title_field": "name"},
    {"entity": "order", "name": "lifecycle", "label": L("Order board", "订单看板"), "kind": "kanban",
     "group_by": "status", "card_fields": ["number", "customer", "total"], "sum": "total"},
    {"entity": "receivable", "name": "due_soon", "label": L("Due within 30 days", "30 天内到期"), "kind": "list",
     "filter": 'status != "paid" && due_date <= @today + 30d', "columns": ["number", "customer", "due_date", "amount", "balance", "status", "owner"],
     "sort": "due_date"},
    {"entity": "contract", "name": "expiring", "label": L("Expiring within 60 days", "60 天内到期合同"), "kind": "list",
     "filter": 'status = "active" && end_date <= @today + 60d', "columns": ["number", "title", "customer", "end_date", "amount", "owner"],
     "sort": "end_date"},
    {"entity": "lead", "name": "hot", "label": L("Hot leads (score ≥ 60)", "高分线索（≥60）"), "kind": "list",
     "filter": 'score >= 60 && status in ["new", "contacted"]', "columns": ["name", "company", "source", "score", "owner"], "sort": "-score"},
]

LIFECYCLE_ORDER = r'''
// A customer's first order makes it a deal customer; more than LOYAL_AFTER orders a loyal one.
// Stages only move forward here; anyone may still set a stage by hand.
const LOYAL_AFTER = 3;
if record.customer == () { return 0; }
let customer = records::get("customer", record.customer);
if customer == () { return 0; }
let orders = records::count("order", `customer = "${record.customer}" && status != "cancelled"`);
let stage = customer.lifecycle_stage;
let next = stage;
if orders > LOYAL_AFTER {
    next = "loyal";
} else if orders >= 1 && (stage == () || stage == "potential" || stage == "intent") {
    next = "deal";
}
if next != stage && stage != "loyal" {
    records::update("customer", customer.id, #{ lifecycle_stage: next });
    log(`${customer.name}: ${stage} → ${next} (${orders} orders)`);
}
orders
'''

LIFECYCLE_OPPORTUNITY = r'''
// An opportunity makes a potential customer an intent customer; a won one makes a deal customer.
let customer = records::get("customer", record.customer);
if customer == () { return (); }
let stage = customer.lifecycle_stage;
let next = stage;
if record.stage == "won" && (stage == () || stage == "potential" || stage == "intent") {
    next = "deal";
} else if record.stage != "lost" && (stage == () || stage == "potential") {
    next = "intent";
}
if next != stage {
    records::update("customer", customer.id, #{ lifecycle_stage: next });
    log(`${customer.name}: ${stage} → ${next}`);
}
next
'''

RECEIVABLES_SCRIPT = r'''
// Mails the owner of every unpaid receivable due in exactly `receivables_reminder_days` days.
let ahead = settings::get("receivables_reminder_days");
let due = add_days(today(), ahead);
let sent = 0;
for r in records::find("receivable", `due_date = "${due}" && status != "paid" && owner != null`,
                       #{ sort: "number", limit: 500 }) {
    let customer = records::get("customer", r.customer);
    mail::send(#{ to: r.owner, template: "receivable_reminder",
                  data: #{ number: r.number, customer: if customer == () { "" } else { customer.name },
                           amount: r.amount, balance: r.balance, due: r.due_date, days: ahead } });
    sent += 1;
}
log(`${sent} receivable reminders for ${due}`);
sent
'''

FOLLOW_UP_SCRIPT = r'''
// Reminds owners of the opportunities to follow up today.
let sent = 0;
for o in records::find("opportunity", `next_follow_up = "${today()}" && !(stage in ["won", "lost"]) && owner != null`,
                       #{ sort: "id", limit: 500 }) {
    mail::send(#{ to: o.owner, template: "follow_up_reminder",
                  data: #{ name: o.name, stage: o.stage, amount: o.amount } });
    sent += 1;
}
sent
'''

CONTRACT_SCRIPT = r'''
// Thirty days before an active contract expires, its owner hears about it.
let day = add_days(today(), 30);
let sent = 0;
for c in records::find("contract", `end_date = "${day}" && status = "active" && owner != null`,
                       #{ sort: "id", limit: 500 }) {
    mail::send(#{ to: c.owner, template: "contract_expiry",
                  data: #{ title: c.title, number: c.number, end_date: c.end_date } });
    sent += 1;
}
sent
'''

LEAD_SCORE_SCRIPT = r'''
// Scores a lead from 0 to 100: where it came from and how reachable it is.
let weights = #{ referral: 35, exhibition: 25, website: 20, advertising: 10, cold_call: 5, other: 0 };
let score = 0;
if record.source != () { score += weights[record.source] ?? 0; }
if record.company != () { score += 20; }
if record.email != () { score += 20; }
if record.phone != () { score += 20; }
if score > 100 { score = 100; }
if record.score != score { records::update("lead", record.id, #{ score: score }); }
score
'''

LEAD_ASSIGN_SCRIPT = r'''
// Round-robin: each new lead goes to the next active user with the sales_rep role.
let reps = users::with_role("sales_rep");
if reps.len() == 0 { log("no active sales_rep to assign to"); return (); }
let position = records::count("lead", `created_at <= "${record.created_at}"`);
let rep = reps[(position - 1) % reps.len()];
records::update("lead", record.id, #{ owner: rep.id });
log(`assigned to ${rep.name}`);
rep.id
'''

ORDER_STEPS_SCRIPT = r'''
// An order moves draft → approved → shipped → settled (or is cancelled); any other step is
// refused. Approval is stamped; shipping dates itself.
let steps = #{ draft: ["approved", "cancelled"], approved: ["shipped", "cancelled", "draft"],
               shipped: ["settled"], settled: [], cancelled: ["draft"] };
let from = old.status;
let to = record.status;
if from != to && from != () {
    let allowed = steps[from] ?? [];
    if !(to in allowed) {
        reject(`an order cannot go from ${from} to ${to}`);
    }
    if to == "approved" { record.approved_at = now(); }
    if to == "shipped" && record.shipped_on == () { record.shipped_on = today(); }
}
'''

ORDER_APPROVED_SCRIPT = r'''
// Tells the order's owner it was approved.
if record.owner != () {
    mail::send(#{ to: record.owner, template: "order_approved",
                  data: #{ number: record.number, total: record.total } });
}
'''

write_package(
    "sales", "1.0.0", L("Sales", "销售管理"),
    L("Leads with scoring and round-robin assignment, opportunities and the pipeline, follow-ups, "
      "quotes and orders with line items, contracts, receivables and sales targets.",
      "销售线索（评分与轮流分配）、销售机会与漏斗、跟进记录、报价单与订单（含明细）、合同、应收款与销售目标。"),
    ["customer"], sales_entities, views=sales_views,
    roles=[role("sales_director", "Sales director", "销售总监", "Every sales record, exports and merges.",
                [e.name for e in sales_entities] + ["customer", "contact"], ["export", "import", "merge", "bulk"])],
    settings={"receivables_reminder_days": 3},
    mail_templates=[
        mail("receivable_reminder", "To the owner of a receivable, N days before it is due",
             "Receivable {{number}} is due in {{days}} days",
             "{{number}} of {{customer}} is due on {{date due}}: {{money balance}} of {{money amount}} still open.\n",
             "应收款 {{number}} 将在 {{days}} 天后到期",
             "{{customer}} 的应收款 {{number}} 于 {{date due \"%Y年%m月%d日\"}} 到期，未收余额 {{money balance}}（应收 {{money amount}}）。\n"),
        mail("follow_up_reminder", "To the owner of an opportunity due for a follow-up today",
             "Follow up today: {{name}}", "Today is the follow-up date of {{name}} ({{stage}}, {{money amount}}).\n",
             "今日跟进：{{name}}", "销售机会 {{name}}（{{stage}}，{{money amount}}）今天需要跟进。\n"),
        mail("contract_expiry", "To a contract's owner, 30 days before it expires",
             "Contract {{number}} expires on {{date end_date}}", "{{title}} ({{number}}) expires on {{date end_date}}. Time to renew.\n",
             "合同 {{number}} 将于 {{date end_date \"%Y年%m月%d日\"}} 到期", "合同《{{title}}》（{{number}}）将于 {{date end_date \"%Y年%m月%d日\"}} 到期，请及时续签。\n"),
        mail("order_approved", "To an order's owner when it is approved",
             "Order {{number}} approved", "Order {{number}} ({{money total}}) was approved and can ship.\n",
             "订单 {{number}} 已审批", "订单 {{number}}（{{money total}}）已通过审批，可以发货。\n"),
    ],
    automations=[
        {"name": "Receivables reminder", "description": "Daily at 09:00: unpaid receivables due in N days (N = receivables_reminder_days).",
         "trigger": {"type": "cron", "cron": "0 9 * * *"}, "script": RECEIVABLES_SCRIPT},
        {"name": "Follow-up reminder", "description": "Daily at 08:30: opportunities whose next follow-up is today.",
         "trigger": {"type": "cron", "cron": "30 8 * * *"}, "script": FOLLOW_UP_SCRIPT},
        {"name": "Contract expiry reminder", "description": "Daily at 08:00: active contracts expiring in 30 days.",
         "trigger": {"type": "cron", "cron": "0 8 * * *"}, "script": CONTRACT_SCRIPT},
        {"name": "Lead scoring", "description": "Scores leads on create and when their source or contact details change.",
         "trigger": {"type": "record", "entity": "lead", "events": ["created", "updated"],
                     "fields": ["source", "company", "email", "phone"]}, "script": LEAD_SCORE_SCRIPT},
        {"name": "Lead assignment", "description": "Round-robin: new leads go to the sales reps in turn.",
         "trigger": {"type": "record", "entity": "lead", "events": ["created"]}, "script": LEAD_ASSIGN_SCRIPT},
        {"name": "Order approval steps", "description": "Orders go draft → approved → shipped → settled; approval is stamped.",
         "trigger": {"type": "before_save", "entity": "order", "events": ["updated"], "fields": ["status"]},
         "script": ORDER_STEPS_SCRIPT},
        {"name": "Order approved notice", "description": "Tells the owner when an order is approved.",
         "trigger": {"type": "record", "entity": "order", "events": ["updated"], "fields": ["status"],
                     "when": 'status = "approved"'}, "script": ORDER_APPROVED_SCRIPT},
        {"name": "Lifecycle from orders", "description": "First order → deal customer; more than 3 orders → loyal.",
         "trigger": {"type": "record", "entity": "order", "events": ["created"]}, "script": LIFECYCLE_ORDER},
        {"name": "Lifecycle from opportunities", "description": "An opportunity → intent customer; a won one → deal.",
         "trigger": {"type": "record", "entity": "opportunity", "events": ["created", "updated"], "fields": ["stage"]},
         "script": LIFECYCLE_OPPORTUNITY},
    ],
    sample=[("lead", leads), ("opportunity", opportunities), ("follow_up", follow_ups), ("quote", quotes),
            ("quote_line", quote_lines), ("contract", contracts), ("order", orders), ("order_line", order_lines),
            ("receivable", receivables), ("sales_target", targets)],
)

# ---- service --------------------------------------------------------------------------------

SLA = ('if(priority = "urgent", reported_at + 4h, if(priority = "high", reported_at + 8h, '
       'if(priority = "low", reported_at + 72h, reported_at + 24h)))')

service_request = Entity("service_request", "Service request", "服务请求", [
    ("number", autonumber("Number", "服务单号", "SR-{00000}")),
    ("subject", f("text", "Subject", "问题摘要")),
    ("channel", select("Channel", "受理渠道", ("phone", "Phone", "电话"), ("email", "Email", "邮件"),
                       ("web", "Web", "网站"), ("chat", "Chat", "在线聊天"), ("call_centre", "Call centre", "呼叫中心"))),
    ("category", select("Category", "服务类别", ("installation", "Installation", "安装"), ("repair", "Repair", "维修"),
                        ("consultation", "Consultation", "咨询"), ("complaint", "Complaint", "投诉"), ("other", "Other", "其他"))),
    ("customer", lookup("Customer", "客户", "customer")),
    ("contact", lookup("Contact", "联系人", "contact")),
    ("product", lookup("Product", "产品", "product")),
    ("priority", select("Priority", "优先级", ("low", "Low", "低"), ("normal", "Normal", "中"), ("high", "High", "高"),
                        ("urgent", "Urgent", "紧急"), default="normal")),
    ("status", select("Status", "处理状态", ("new", "New", "新建"), ("assigned", "Assigned", "已分配"),
                      ("in_progress", "In progress", "处理中"), ("resolved", "Resolved", "已解决"),
                      ("closed", "Closed", "已关闭"), default="new")),
    ("assignee", f("user", "Assignee", "处理人")),
    ("reported_at", f("datetime", "Reported at", "受理时间")),
    ("sla_due", formula("SLA due", "SLA 到期时间", SLA, "datetime")),
    ("sla_alerted", f("boolean", "SLA alert sent", "已发送超时提醒")),
    ("satisfaction", f("integer", "Satisfaction (1–5)", "满意度（1–5）", minimum=1, maximum=5)),
    ("description", f("long_text", "Description", "问题描述")),
    ("resolution", f("long_text", "Resolution", "解决方案")),
    ("feedback", f("long_text", "Customer feedback", "客户反馈")),
], required=["subject", "channel", "reported_at"], display="number")

service_step = Entity("service_step", "Service step", "处理步骤", [
    ("step", f("text", "Step", "步骤")),
    ("request", lookup("Service request", "服务请求", "service_request")),
    ("occurred_at", f("datetime", "Time", "时间")),
    ("detail", f("long_text", "Detail", "处理说明")),
], required=["step", "request"])

service_contract = Entity("service_contract", "Service contract", "服务合同", [
    ("number", autonumber("Number", "服务合同编号", "SC-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("product", lookup("Product", "产品", "product")),
    ("level", select("Service level", "服务级别", ("basic", "Basic", "基础"), ("standard", "Standard", "标准"),
                     ("premium", "Premium", "尊享"))),
    ("start_date", f("date", "Starts", "开始日期")),
    ("end_date", f("date", "Ends", "结束日期")),
    ("amount", money("Amount", "合同金额", "contracts", minimum=0)),
    ("status", select("Status", "状态", ("active", "Active", "生效"), ("expired", "Expired", "已过期"), default="active")),
], required=["customer"], display="number")

repair = Entity("repair", "Repair", "产品维修", [
    ("number", autonumber("Number", "维修单号", "RP-{00000}")),
    ("product", lookup("Product", "产品", "product")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("serial_number", f("text", "Serial number", "序列号", **{"x-indexed": True})),
    ("defect", f("text", "Defect", "故障描述")),
    ("status", select("Status", "维修状态", ("received", "Received", "已接收"), ("diagnosing", "Diagnosing", "检测中"),
                      ("repairing", "Repairing", "维修中"), ("done", "Repaired", "已修复"), ("returned", "Returned", "已返还"),
                      default="received")),
    ("received_on", f("date", "Received on", "接收日期")),
    ("returned_on", f("date", "Returned on", "返还日期")),
    ("cost", money("Cost", "维修费用", "orders", minimum=0)),
], required=["product", "defect"], display="number")

packing_list = Entity("packing_list", "Packing list", "装箱单", [
    ("number", autonumber("Number", "装箱单号", "PK-{00000}")),
    ("customer", lookup("Customer", "客户", "customer")),
    ("repair", lookup("Repair", "维修单", "repair")),
    ("packed_on", f("date", "Packed on", "装箱日期")),
    ("shipped_on", f("date", "Shipped on", "发运日期")),
    ("carrier", f("text", "Carrier", "承运商")),
    ("tracking_number", f("text", "Tracking number", "运单号")),
    ("items", f("long_text", "Items", "装箱明细")),
], required=["customer"], display="number")

product_defect = Entity("product_defect", "Product defect", "产品缺陷", [
    ("title", f("text", "Title", "缺陷标题")),
    ("product", lookup("Product", "产品", "product")),
    ("severity", select("Severity", "严重程度", ("minor", "Minor", "轻微"), ("major", "Major", "严重"),
                        ("critical", "Critical", "致命"))),
    ("status", select("Status", "状态", ("open", "Open", "待处理"), ("analysing", "Analysing", "分析中"),
                      ("fixed", "Fixed", "已修复"), ("wont_fix", "Won't fix", "不予修复"), default="open")),
    ("reported_on", f("date", "Reported on", "发现日期")),
    ("description", f("long_text", "Description", "缺陷说明")),
], required=["title", "product"])

kb_article = Entity("kb_article", "Knowledge-base article", "知识库文章", [
    ("title", f("text", "Title", "标题")),
    ("category", select("Category", "分类", ("faq", "FAQ", "常见问题"), ("guide", "Guide", "使用指南"),
                        ("troubleshooting", "Troubleshooting", "故障排除"), ("policy", "Service policy", "服务政策"))),
    ("visibility", select("Visibility", "可见范围", ("public", "Public (self-service)", "公开（客户自助）"),
                          ("internal", "Internal", "内部"), default="internal")),
    ("published", f("boolean", "Published", "已发布", default=False)),
    ("body", f("long_text", "Content", "正文")),
], required=["title", "body"], owner=("Author", "作者"))

service_entities = [service_request, service_step, service_contract, repair, packing_list,
                    product_defect, kb_article]

rng = random.Random(4)
requests, steps, service_contracts, repairs, packing_lists, defects, articles = [], [], [], [], [], [], []
ISSUES = [("设备无法开机", "repair"), ("安装调试预约", "installation"), ("授权续费咨询", "consultation"),
          ("传感器读数异常", "repair"), ("交付延迟投诉", "complaint"), ("How to reset the gateway", "consultation"),
          ("软件报错 E102", "repair"), ("培训安排", "other")]
for i in range(40):
    c = rng.randint(1, 60)
    subject, category = pick(ISSUES)
    status = rng.choices(["new", "assigned", "in_progress", "resolved", "closed"], [2, 2, 2, 2, 3])[0]
    record = {"$key": f"service_request:{i + 1:03d}", "subject": subject, "category": category,
              "channel": pick(["phone", "email", "web", "chat", "call_centre"]),
              "customer": {"$ref": f"customer:{c:03d}"}, "contact": {"$ref": f"contact:{c:03d}"},
              "product": {"$ref": f"product:{rng.randint(1, 20):03d}"},
              "priority": rng.choices(["low", "normal", "high", "urgent"], [2, 5, 2, 1])[0], "status": status,
              "reported_at": {"$days": -rng.randint(0, 20), "time": f"{rng.randint(8, 18):02d}:00"},
              "description": "客户反馈问题，需尽快处理。"}
    if status in ("resolved", "closed"):
        record["resolution"] = pick(["更换电源模块后恢复正常", "远程升级固件解决", "已提供操作指导", "Replaced the faulty board"])
    if status == "closed":
        record["satisfaction"] = rng.randint(3, 5)
        record["feedback"] = pick(["响应很快，非常满意", "工程师专业", "Quick fix, thanks", "希望能更早上门"])
    requests.append(record)
    for n, step in enumerate(["受理登记", "分配工程师", "现场处理", "回访确认"][:rng.randint(1, 4)]):
        steps.append({"step": step, "request": {"$ref": f"service_request:{i + 1:03d}"},
                      "occurred_at": {"$days": -rng.randint(0, 20), "time": f"{9 + n:02d}:30"}})
for i in range(10):
    service_contracts.append({"customer": {"$ref": f"customer:{rng.randint(1, 60):03d}"},
                              "product": {"$ref": f"product:{rng.randint(1, 20):03d}"},
                              "level": pick(["basic", "standard", "premium"]), "start_date": {"$days": -rng.randint(0, 200)},
                              "end_date": {"$days": rng.randint(30, 365)}, "amount": f"{rng.randint(5, 60) * 1000}.00"})
for i in range(15):
    repairs.append({"$key": f"repair:{i + 1:03d}", "product": {"$ref": f"product:{rng.randint(1, 5):03d}"},
                    "customer": {"$ref": f"customer:{rng.randint(1, 60):03d}"},
                    "serial_number": f"SN{rng.randint(10**7, 10**8 - 1)}",
                    "defect": pick(["电源故障", "主板损坏", "接口松动", "Display flicker"]),
                    "status": pick(["received", "diagnosing", "repairing", "done", "returned"]),
                    "received_on": {"$days": -rng.randint(0, 30)}, "cost": f"{rng.randint(0, 30) * 100}.00"})
for i in range(8):
    packing_lists.append({"customer": {"$ref": f"customer:{rng.randint(1, 60):03d}"},
                          "repair": {"$ref": f"repair:{i + 1:03d}"}, "packed_on": {"$days": -rng.randint(0, 10)},
                          "carrier": pick(["顺丰速运", "京东物流", "DHL"]), "tracking_number": f"SF{rng.randint(10**9, 10**10 - 1)}",
                          "items": "维修后设备 ×1\n电源适配器 ×1\n保修卡 ×1"})
for i in range(8):
    defects.append({"title": pick(["高温环境下读数漂移", "固件升级后偶发重启", "外壳卡扣易断", "Port 3 drops link"]) + f" #{i + 1}",
                    "product": {"$ref": f"product:{rng.randint(1, 5):03d}"},
                    "severity": pick(["minor", "major", "critical"]), "status": pick(["open", "analysing", "fixed"]),
                    "reported_on": {"$days": -rng.randint(0, 90)}})
ARTICLES = [
    ("如何重置数据采集网关", "troubleshooting", "public", "1. 断电 10 秒；2. 按住 RESET 键 5 秒后通电；3. 指示灯绿色常亮即完成重置。"),
    ("工业控制器安装指南", "guide", "public", "安装前请确认供电 24V DC，导轨安装后连接 RS-485 总线，并在配置工具中设置站号。"),
    ("保修与维修政策", "policy", "public", "自购买之日起硬件保修 24 个月；人为损坏不在保修范围内；维修周期一般为 5 个工作日。"),
    ("传感器读数异常怎么办", "faq", "public", "请先检查接线与屏蔽层接地，再在配置工具中执行零点校准；仍异常请提交服务请求。"),
    ("How do I renew my CRM licence?", "faq", "public", "Open Settings → Licence, choose the number of users and pay online; the new key applies at once."),
    ("Gateway LED codes", "troubleshooting", "public", "Green: online. Amber blinking: no uplink. Red: hardware fault — contact support."),
    ("软件报错 E102 的处理", "troubleshooting", "public", "E102 表示数据库连接失败：检查网络与数据库服务，并在配置文件中确认连接地址。"),
    ("服务工程师上门规范", "policy", "internal", "上门前电话确认，穿工装佩戴工牌，完工后请客户签字确认并拍照上传。"),
    ("投诉升级流程", "policy", "internal", "投诉 2 小时内响应，24 小时内给出处理方案，超时升级至服务经理。"),
    ("MES 常见配置问题", "faq", "public", "工单不下发时检查产线日历与班次设置，并确认物料清单已审核。"),
    ("Preparing for an on-site audit", "guide", "public", "Share the equipment list, open the maintenance records and name a contact on site."),
    ("内部：备件库存查询方法", "guide", "internal", "在 ERP 备件模块按物料编码查询，低于安全库存时提交采购申请。"),
]
for i, (title, category, visibility, body) in enumerate(ARTICLES):
    articles.append({"title": title, "category": category, "visibility": visibility,
                     "published": i != 9, "body": body})

service_views = [
    {"entity": "service_request", "name": "board", "label": L("Request board", "服务看板"), "kind": "kanban",
     "group_by": "status", "card_fields": ["number", "subject", "priority", "assignee"]},
    {"entity": "service_request", "name": "open", "label": L("Open requests", "未关闭请求"), "kind": "list",
     "filter": '!(status in ["resolved", "closed"])', "columns": ["number", "subject", "customer", "priority", "status", "assignee", "sla_due"],
     "sort": "sla_due"},
    {"entity": "service_request", "name": "mine", "label": L("Assigned to me", "我的请求"), "kind": "list",
     "filter": 'assignee = @me && !(status in ["closed"])', "columns": ["number", "subject", "customer", "priority", "status", "sla_due"],
     "sort": "sla_due"},
    {"entity": "service_request", "name": "sla_calendar", "label": L("SLA calendar", "SLA 日历"), "kind": "calendar",
     "date_field": "sla_due", "title_field": "subject"},
    {"entity": "kb_article", "name": "public", "label": L("Published for customers", "对外公开文章"), "kind": "list",
     "filter": 'published = true && visibility = "public"', "columns": ["title", "category", "updated_at"]},
]

ASSIGN_SCRIPT = r'''
// Assigns a new request by its category: repairs and installations to service engineers,
// everything else to service agents — whoever has the fewest open requests.
let roles = #{ repair: "service_engineer", installation: "service_engineer" };
let role = roles[record.category] ?? "service_agent";
let people = users::with_role(role);
if people.len() == 0 { log(`nobody has the role ${role}`); return (); }
let best = people[0];
let least = -1;
for p in people {
    let open = records::count("service_request", `assignee = "${p.id}" && !(status in ["resolved", "closed"])`);
    if least < 0 || open < least { least = open; best = p; }
}
records::update("service_request", record.id, #{ assignee: best.id, status: "assigned" });
records::create("service_step", #{ request: record.id, step: `Assigned to ${best.name}`, occurred_at: now() });
best.id
'''

SLA_SCRIPT = r'''
// Every 10 minutes: requests past their SLA and still open alert their assignee (or owner), once.
let sent = 0;
for r in records::find("service_request", `sla_due < @now && !(status in ["resolved", "closed"]) && sla_alerted != true`,
                       #{ sort: "sla_due", limit: 200 }) {
    let to = if r.assignee != () { r.assignee } else { r.owner };
    if to != () {
        mail::send(#{ to: to, template: "sla_breach",
                      data: #{ number: r.number, subject: r.subject, due: r.sla_due, priority: r.priority } });
        sent += 1;
    }
    records::update("service_request", r.id, #{ sla_alerted: true });
}
sent
'''

SURVEY_SCRIPT = r'''
// When a request is closed, its contact gets a satisfaction survey.
if record.contact == () { return (); }
let contact = records::get("contact", record.contact);
if contact == () || contact.email == () { return (); }
mail::send(#{ to: contact.email, template: "satisfaction_survey",
              data: #{ name: contact.name, number: record.number, subject: record.subject } });
records::create("service_step", #{ request: record.id, step: "Satisfaction survey sent", occurred_at: now() });
contact.email
'''

write_package(
    "service", "1.0.0", L("Service", "服务管理"),
    L("Service requests from every channel with a step log, SLA and satisfaction; service contracts, "
      "repairs, packing lists, product defects and a knowledge base with a public self-service page.",
      "多渠道服务请求（处理步骤、SLA、满意度）、服务合同、产品维修、装箱单、产品缺陷，以及带客户自助查询页面的知识库。"),
    ["customer"], service_entities, views=service_views,
    roles=[role("service_engineer", "Service engineer", "服务工程师", "Works on repairs and installations.",
                ["service_request", "service_step", "repair", "packing_list", "product_defect", "kb_article"]),
           role("service_manager", "Service manager", "服务经理", "Every service record, exports and knowledge base.",
                [e.name for e in service_entities] + ["customer", "contact"], ["export", "bulk"])],
    mail_templates=[
        mail("sla_breach", "To the assignee when a request passes its SLA",
             "SLA breached: {{number}} {{subject}}", "{{number}} ({{priority}}) was due by {{date due}} and is still open.\n",
             "服务超时：{{number}} {{subject}}", "服务请求 {{number}}（优先级 {{priority}}）应于 {{date due}} 前处理，目前仍未解决。\n"),
        mail("satisfaction_survey", "To the contact when a request is closed",
             "How did we do? ({{number}})", "Dear {{name}},\n\nYour request \"{{subject}}\" ({{number}}) is closed. Please rate our service from 1 to 5 by replying to this mail.\n",
             "服务满意度回访（{{number}}）", "尊敬的{{name}}：\n\n您的服务请求“{{subject}}”（{{number}}）已处理完毕，请回复 1–5 分为本次服务评分，感谢您的支持！\n"),
    ],
    automations=[
        {"name": "Service assignment", "description": "New requests go to the least-loaded engineer or agent for their category.",
         "trigger": {"type": "record", "entity": "service_request", "events": ["created"], "when": "assignee = null"},
         "script": ASSIGN_SCRIPT},
        {"name": "SLA breach alert", "description": "Every 10 minutes: open requests past their SLA due time.",
         "trigger": {"type": "cron", "cron": "*/10 * * * *"}, "script": SLA_SCRIPT},
        {"name": "Satisfaction survey", "description": "Mails the contact a survey when a request is closed.",
         "trigger": {"type": "record", "entity": "service_request", "events": ["updated"], "fields": ["status"],
                     "when": 'status = "closed"'}, "script": SURVEY_SCRIPT},
    ],
    sample=[("service_request", requests), ("service_step", steps), ("service_contract", service_contracts),
            ("repair", repairs), ("packing_list", packing_lists), ("product_defect", defects), ("kb_article", articles)],
)

# ---- marketing ------------------------------------------------------------------------------

ROI = "if(actual_cost > 0, round((expected_revenue - actual_cost) * 100 / actual_cost, 1), null)"

campaign = Entity("campaign", "Campaign", "市场活动", [
    ("name", f("text", "Name", "活动名称")),
    ("type", select("Type", "活动类型", ("exhibition", "Exhibition", "展会"), ("seminar", "Seminar", "研讨会"),
                    ("online", "Online", "线上推广"), ("email", "Email", "邮件营销"), ("advertising", "Advertising", "广告投放"))),
    ("status", select("Status", "活动状态", ("planned", "Planned", "计划中"), ("active", "Active", "进行中"),
                      ("completed", "Completed", "已完成"), ("cancelled", "Cancelled", "已取消"), default="planned")),
    ("start_date", f("date", "Starts", "开始日期")),
    ("end_date", f("date", "Ends", "结束日期")),
    ("budget", money("Budget", "预算", "orders", minimum=0)),
    ("actual_cost", money("Actual cost", "实际成本", "orders", minimum=0)),
    ("expected_revenue", money("Expected revenue", "预期收入", "orders", minimum=0)),
    ("roi", formula("ROI (%)", "投资回报率（%）", ROI, "decimal")),
    ("members", rollup("Members", "成员数", "campaign_member", "campaign", None, "count")),
    ("goals", f("long_text", "Goals", "活动目标")),
], required=["name", "type"])

campaign_member = Entity("campaign_member", "Campaign member", "活动成员", [
    ("campaign", lookup("Campaign", "市场活动", "campaign")),
    ("lead", lookup("Lead", "线索", "lead")),
    ("contact", lookup("Contact", "联系人", "contact")),
    ("status", select("Status", "状态", ("invited", "Invited", "已邀请"), ("responded", "Responded", "已响应"),
                      ("attended", "Attended", "已参加"), ("converted", "Converted", "已转化"), default="invited")),
], required=["campaign"], display="status")

email_campaign = Entity("email_campaign", "Email campaign", "邮件营销", [
    ("name", f("text", "Name", "名称")),
    ("campaign", lookup("Campaign", "市场活动", "campaign")),
    ("mail_template", f("text", "Mail template", "邮件模板", default="campaign_newsletter")),
    ("audience", f("text", "Audience (saved view)", "目标客群（已保存视图）", default="contact/newsletter_audience")),
    ("status", select("Status", "状态", ("draft", "Draft", "草稿"), ("sending", "Send now", "立即发送"),
                      ("sent", "Sent", "已发送"), default="draft")),
    ("sent_count", f("integer", "Sent", "已发送数")),
    ("skipped_count", f("integer", "Skipped (unsubscribed or no email)", "跳过数（已退订或无邮箱）")),
    ("sent_at", f("datetime", "Sent at", "发送时间")),
], required=["name", "mail_template", "audience"], description=L(
    "Set the status to \"Send now\" to mail the template to every record of the audience view; "
    "addresses that unsubscribed are skipped.",
    "将状态改为“立即发送”，即向目标视图中的每条记录发送邮件模板；已退订的地址自动跳过。"))

marketing_entities = [campaign, campaign_member, email_campaign]

rng = random.Random(5)
campaigns, members = [], []
CAMPAIGNS = [("2026 工业自动化展", "exhibition"), ("智能制造研讨会（上海站）", "seminar"), ("新品线上发布会", "online"),
             ("年末客户关怀邮件", "email"), ("行业媒体广告", "advertising"), ("Partner webinar series", "online")]
for i, (name, kind) in enumerate(CAMPAIGNS):
    budget = rng.randint(2, 50) * 10000
    campaigns.append({"$key": f"campaign:{i + 1:03d}", "name": name, "type": kind,
                      "status": pick(["planned", "active", "completed"]), "start_date": {"$days": rng.randint(-60, 30)},
                      "end_date": {"$days": rng.randint(31, 90)}, "budget": f"{budget}.00",
                      "actual_cost": f"{int(budget * rng.uniform(0.5, 1.1))}.00",
                      "expected_revenue": f"{budget * rng.randint(2, 8)}.00",
                      "goals": "提升品牌认知，获取不少于 50 条有效线索。"})
for i in range(40):
    members.append({"campaign": {"$ref": f"campaign:{i % 6 + 1:03d}"},
                    "contact": {"$ref": f"contact:{rng.randint(1, 120):03d}"},
                    "status": pick(["invited", "responded", "attended", "converted"])})

marketing_views = [
    {"entity": "contact", "name": "newsletter_audience", "label": L("Newsletter audience", "邮件营销客群"),
     "kind": "list", "filter": "email != null", "columns": ["name", "email", "customer", "owner"]},
    {"entity": "campaign", "name": "board", "label": L("Campaign board", "活动看板"), "kind": "kanban",
     "group_by": "status", "card_fields": ["name", "type", "budget", "roi"], "sum": "budget"},
    {"entity": "campaign", "name": "calendar", "label": L("Campaign calendar", "活动日历"), "kind": "calendar",
     "date_field": "start_date", "end_field": "end_date", "title_field": "name"},
]

CAMPAIGN_SCRIPT = r'''
// Mails the campaign's template to every record of its audience view (500 at a time), one
// message per address with its own unsubscribe link; unsubscribed addresses are skipped.
let sent = 0;
let skipped = 0;
let after = ();
loop {
    let page = if after == () { records::in_view(record.audience) }
               else { records::in_view(record.audience, #{ after: after }) };
    for r in page {
        after = r.id;
        if r.email == () { skipped += 1; continue; }
        let m = mail::send(#{ to: r.email, template: record.mail_template, campaign: record.name,
                              data: #{ name: r.name, campaign: record.name } });
        if m.skipped == true { skipped += 1; } else { sent += 1; }
    }
    if page.len() < 500 { break; }
}
records::update("email_campaign", record.id, #{ status: "sent", sent_count: sent,
                                                skipped_count: skipped, sent_at: now() });
log(`${sent} sent, ${skipped} skipped`);
sent
'''

write_package(
    "marketing", "1.0.0", L("Marketing", "市场营销"),
    L("Campaigns with budget, cost, expected revenue and ROI, their members (leads or contacts), "
      "and email campaigns to a saved view with an unsubscribe link.",
      "市场活动（预算、成本、预期收入与投资回报率）及活动成员（线索或联系人），以及面向已保存视图、带退订链接的邮件营销。"),
    ["customer", "sales"], marketing_entities, views=marketing_views,
    roles=[role("marketing_manager", "Marketing manager", "市场经理", "Campaigns, members and leads.",
                ["campaign", "campaign_member", "lead"], ["export", "import", "bulk"])],
    mail_templates=[
        mail("campaign_newsletter", "A campaign mail; {{unsubscribe_url}} is filled in for each recipient",
             "{{campaign}}: news from us",
             "Dear {{name}},\n\nHere is what is new this season.\n\nUnsubscribe: {{unsubscribe_url}}\n",
             "{{campaign}}：最新动态",
             "尊敬的{{name}}：\n\n以下是本季最新动态。\n\n退订：{{unsubscribe_url}}\n"),
    ],
    automations=[
        {"name": "Send email campaign", "description": "When an email campaign is set to \"Send now\": mail its audience view, skipping unsubscribed addresses.",
         "trigger": {"type": "record", "entity": "email_campaign", "events": ["created", "updated"], "fields": ["status"],
                     "when": 'status = "sending"'}, "script": CAMPAIGN_SCRIPT},
    ],
    sample=[("campaign", campaigns), ("campaign_member", members),
            ("email_campaign", [{"name": "年末客户关怀", "campaign": {"$ref": "campaign:004"}, "status": "draft"}])],
)
