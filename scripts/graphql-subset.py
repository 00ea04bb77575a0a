#!/usr/bin/env python3
"""The Shopify Admin GraphQL schema subset shopify-sim serves, and its contract with the real schema.

  scripts/graphql-subset.py check SUBSET REAL [DOCUMENT...]
      Every type, field, argument, enum value and directive in SUBSET exists in REAL with the same type (and kind);
      SUBSET is itself a valid schema; every DOCUMENT (a .graphql operation the project sends) validates against REAL.
  scripts/graphql-subset.py generate REAL > SUBSET
      Writes the subset selected in SELECTION below from REAL: types and fields only, no descriptions. Extend
      SELECTION when the simulator serves more, regenerate, and commit.
  scripts/graphql-subset.py swift SUBSET > Sources/ShopifySimulator/GraphQL/AdminSchemaSubset.swift
      Embeds SUBSET in the simulator (a string constant: the binary carries its schema, no resource files to ship).
      A test checks the constant still equals SUBSET.

Needs graphql-core (pip install graphql-core).
"""
import sys

from graphql import (GraphQLEnumType, GraphQLInputObjectType, GraphQLInterfaceType, GraphQLObjectType,
                     GraphQLScalarType, GraphQLUnionType, build_schema, parse, validate)

# type -> fields (None: all fields / values); enums list the values served.
SELECTION = {
    "QueryRoot": ["locations", "location", "inventoryItems", "inventoryItem", "productVariants", "orders", "ordersCount",
                  "bulkOperation", "currentBulkOperation", "priceList", "priceLists"],
    "Mutation": ["inventorySetQuantities", "bulkOperationRunQuery", "priceListFixedPricesAdd", "priceListFixedPricesUpdate"],
    "PageInfo": ["hasNextPage", "hasPreviousPage", "startCursor", "endCursor"],
    "Location": ["id", "legacyResourceId", "name", "isActive"],
    "LocationConnection": ["nodes", "edges", "pageInfo"],
    "LocationEdge": ["node", "cursor"],
    "InventoryItem": ["id", "legacyResourceId", "sku", "tracked", "updatedAt", "variant", "inventoryLevels",
                      "inventoryLevel"],
    "InventoryItemConnection": ["nodes", "edges", "pageInfo"],
    "InventoryItemEdge": ["node", "cursor"],
    "InventoryLevel": ["id", "location", "item", "quantities", "updatedAt"],
    "InventoryLevelConnection": ["nodes", "edges", "pageInfo"],
    "InventoryLevelEdge": ["node", "cursor"],
    "InventoryQuantity": ["name", "quantity", "updatedAt"],
    "ProductVariant": ["id", "legacyResourceId", "sku", "title", "price", "inventoryItem", "updatedAt"],
    "ProductVariantConnection": ["nodes", "edges", "pageInfo"],
    "ProductVariantEdge": ["node", "cursor"],
    "LineItem": ["id", "sku", "quantity", "currentQuantity", "unfulfilledQuantity"],
    "LineItemConnection": ["nodes", "edges", "pageInfo"],
    "LineItemEdge": ["node", "cursor"],
    "Order": ["id", "legacyResourceId", "name", "createdAt", "updatedAt", "cancelledAt", "displayFinancialStatus", "lineItems",
              "currencyCode", "totalPriceSet", "totalRefundedSet"],
    "OrderConnection": ["nodes", "edges", "pageInfo"],
    "Count": None,
    "CountPrecision": None,
    "OrderEdge": ["node", "cursor"],
    "MoneyBag": ["shopMoney", "presentmentMoney"],
    "MoneyV2": ["amount", "currencyCode"],
    "InventorySetQuantitiesInput": None,
    "InventoryQuantityInput": None,
    "InventorySetQuantitiesPayload": None,
    "InventoryAdjustmentGroup": ["id", "createdAt", "reason", "referenceDocumentUri", "changes"],
    "InventoryChange": ["name", "delta", "quantityAfterChange", "item", "location"],
    "InventorySetQuantitiesUserError": None,
    "InventorySetQuantitiesUserErrorCode": None,
    "BulkOperation": ["id", "status", "errorCode", "createdAt", "completedAt", "objectCount", "rootObjectCount",
                      "fileSize", "url", "partialDataUrl", "query", "type"],
    "BulkOperationRunQueryPayload": None,
    "BulkOperationUserError": None,
    "BulkOperationUserErrorCode": None,
    "BulkOperationStatus": None,
    "BulkOperationErrorCode": None,
    "BulkOperationType": None,
    "PriceList": ["id", "name", "currency", "fixedPricesCount", "prices"],
    "PriceListConnection": ["nodes", "edges", "pageInfo"],
    "PriceListEdge": ["node", "cursor"],
    "PriceListPrice": ["price", "compareAtPrice", "originType", "variant"],
    "PriceListPriceConnection": ["nodes", "edges", "pageInfo"],
    "PriceListPriceEdge": ["node", "cursor"],
    "PriceListPriceOriginType": None,
    "PriceListSortKeys": None,
    "PriceListPriceInput": None,
    "MoneyInput": None,
    "PriceListFixedPricesAddPayload": None,
    "PriceListFixedPricesUpdatePayload": None,
    "PriceListPriceUserError": None,
    "PriceListPriceUserErrorCode": None,
    "LocationSortKeys": None,
    "ProductVariantSortKeys": None,
    "OrderSortKeys": None,
    "OrderDisplayFinancialStatus": None,
    "CurrencyCode": ["USD", "EUR", "GBP", "CAD", "AUD", "JPY", "CHF", "SEK", "DKK", "NOK", "PLN"],
    "DateTime": None, "Decimal": None, "URL": None, "UnsignedInt64": None, "Money": None,
}
DIRECTIVES = ["idempotent"]
BUILTIN = {"String", "Int", "Float", "Boolean", "ID"}


def named(t):
    while hasattr(t, "of_type"):
        t = t.of_type
    return t.name


def generate(real_path):
    real = build_schema(open(real_path).read())
    out = ["# Shopify Admin API 2026-07: the subset shopify-sim serves. Types and fields only; generated by",
           "# scripts/graphql-subset.py from the real schema and checked against it by the contract test.", ""]
    out.append("schema { query: QueryRoot mutation: Mutation }\n")
    for d in DIRECTIVES:
        dd = real.get_directive(d)
        args = ", ".join(f"{k}: {v.type}" for k, v in dd.args.items())
        out.append(f"directive @{d}({args}) on {' | '.join(l.name for l in dd.locations)}\n")
    for name, fields in SELECTION.items():
        t = real.get_type(name)
        if isinstance(t, GraphQLScalarType):
            out.append(f"scalar {name}\n")
        elif isinstance(t, GraphQLEnumType):
            values = [v for v in t.values if fields is None or v in fields]
            out.append(f"enum {name} {{\n" + "".join(f"  {v}\n" for v in values) + "}\n")
        else:
            kw = "input" if isinstance(t, GraphQLInputObjectType) else "type"
            lines = []
            for fname, f in t.fields.items():
                if fields is not None and fname not in fields:
                    continue
                args = ""
                if getattr(f, "args", None):
                    args = "(" + ", ".join(f"{a}: {v.type}" for a, v in f.args.items()
                                           if named(v.type) in BUILTIN or named(v.type) in SELECTION) + ")"
                    if args == "()":
                        args = ""
                lines.append(f"  {fname}{args}: {f.type}\n")
            out.append(f"{kw} {name} {{\n" + "".join(lines) + "}\n")
    print("\n".join(out))


def check(subset_path, real_path, documents):
    real = build_schema(open(real_path).read())
    subset = build_schema(open(subset_path).read())  # raises if the subset is not a valid schema on its own
    problems = []
    for name, t in subset.type_map.items():
        if name.startswith("__") or name in BUILTIN:
            continue
        r = real.get_type(name)
        if r is None:
            problems.append(f"type {name} does not exist in the real schema")
            continue
        if type(r) is not type(t) and not (isinstance(t, GraphQLObjectType) and isinstance(r, GraphQLObjectType)):
            problems.append(f"type {name} is a {type(t).__name__} here but a {type(r).__name__} in the real schema")
            continue
        if isinstance(t, GraphQLEnumType):
            for v in t.values:
                if v not in r.values:
                    problems.append(f"enum value {name}.{v} does not exist")
        elif isinstance(t, (GraphQLObjectType, GraphQLInterfaceType, GraphQLInputObjectType)):
            for fname, f in t.fields.items():
                rf = r.fields.get(fname)
                if rf is None:
                    problems.append(f"field {name}.{fname} does not exist")
                    continue
                if str(rf.type) != str(f.type):
                    problems.append(f"field {name}.{fname} is {f.type} here but {rf.type} in the real schema")
                for a, av in getattr(f, "args", {}).items():
                    ra = rf.args.get(a)
                    if ra is None:
                        problems.append(f"argument {name}.{fname}({a}) does not exist")
                    elif str(ra.type) != str(av.type):
                        problems.append(f"argument {name}.{fname}({a}) is {av.type} here but {ra.type} in the real schema")
            for i in getattr(t, "interfaces", []):
                if i.name not in [x.name for x in r.interfaces]:
                    problems.append(f"{name} implements {i.name} here but not in the real schema")
        elif isinstance(t, GraphQLUnionType):
            for m in t.types:
                if m.name not in [x.name for x in r.types]:
                    problems.append(f"union {name} has {m.name} here but not in the real schema")
    for d in subset.directives:
        if d.name in ("include", "skip", "deprecated", "specifiedBy", "oneOf"):
            continue
        rd = real.get_directive(d.name)
        if rd is None:
            problems.append(f"directive @{d.name} does not exist")
            continue
        for a, av in d.args.items():
            if a not in rd.args or str(rd.args[a].type) != str(av.type):
                problems.append(f"directive @{d.name}({a}: {av.type}) differs from the real schema")
        if not set(d.locations) <= set(rd.locations):
            problems.append(f"directive @{d.name} locations differ")
    for path in documents:
        errors = validate(real, parse(open(path).read()))
        problems += [f"{path}: {e.message}" for e in errors]
    counts = (len([n for n in subset.type_map if not n.startswith("__") and n not in BUILTIN]),
              sum(len(t.fields) for t in subset.type_map.values()
                  if isinstance(t, (GraphQLObjectType, GraphQLInputObjectType)) and not t.name.startswith("__")))
    if problems:
        print("\n".join(problems))
        sys.exit(1)
    print(f"subset faithful: {counts[0]} types, {counts[1]} fields, {len(subset.directives)} directives; "
          f"{len(documents)} documents valid against the real schema")


def swift(subset_path):
    sdl = open(subset_path).read()
    assert '"""' not in sdl and "\\" not in sdl
    print("// Generated by scripts/graphql-subset.py swift from shopify-admin-subset.graphql; do not edit by hand.")
    print("// The simulator builds its schema from this text; SimulatorTests check it equals the checked .graphql file.\n")
    print("public enum AdminSchemaSubset {")
    print('    public static let sdl = """')
    for line in sdl.rstrip("\n").split("\n"):
        print(("        " + line) if line else "")
    print('        """')
    print("}")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        check(sys.argv[2], sys.argv[3], sys.argv[4:])
    elif len(sys.argv) == 3 and sys.argv[1] == "swift":
        swift(sys.argv[2])
    elif len(sys.argv) == 3 and sys.argv[1] == "generate":
        generate(sys.argv[2])
    else:
        print(__doc__)
        sys.exit(2)
