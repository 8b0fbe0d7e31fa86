-- The tables the examples in this directory read: contacts (crm-sync.yaml),
-- customers, orders and shipments (erp-orders.yaml), products, warehouses
-- and inventory (inventory-fanout.yaml). Load it into an empty database:
--
--   psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/examples/schema.sql
--
-- then check that every table and column an example names exists:
--
--   cdcd validate --check-db -c deploy/examples/erp-orders.yaml
--
-- cdcd itself needs wal_level = logical and a role with REPLICATION (or a
-- superuser); it creates its publication and slot on first run.

-- CRM contacts (crm-sync.yaml). password_hash and api_token are secrets
-- that the CRM pipelines hide with columns.deny.
CREATE TABLE contacts (
    id                bigserial PRIMARY KEY,
    email             text NOT NULL UNIQUE,
    first_name        text,
    last_name         text,
    phone             text,
    mobile_phone      text,
    company           text,
    title             text,
    source            text,                      -- lead source: web, referral, event, ...
    status            text NOT NULL DEFAULT 'lead',
    password_hash     text,
    api_token         text,
    sync_status       text NOT NULL DEFAULT 'pending',
    sync_error        text,
    last_sync_attempt timestamptz,
    last_synced_at    timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- Customers and their orders (erp-orders.yaml).
CREATE TABLE customers (
    id         bigserial PRIMARY KEY,
    email      text NOT NULL UNIQUE,
    first_name text,
    last_name  text,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id           bigserial PRIMARY KEY,
    order_number text NOT NULL UNIQUE,
    customer_id  bigint NOT NULL REFERENCES customers (id),
    order_date   date NOT NULL DEFAULT current_date,
    ship_date    date,                           -- requested ship date
    status       text NOT NULL DEFAULT 'draft',  -- draft, confirmed, shipped, delivered, cancelled
    subtotal     numeric(12, 2) NOT NULL DEFAULT 0,
    tax          numeric(12, 2) NOT NULL DEFAULT 0,
    shipping     numeric(12, 2) NOT NULL DEFAULT 0,
    total        numeric(12, 2) NOT NULL DEFAULT 0,
    currency     char(3) NOT NULL DEFAULT 'USD',
    delivered_at timestamptz,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
-- The notification filters compare before.status with after.status. Only
-- with REPLICA IDENTITY FULL does an update carry the whole old row;
-- otherwise it carries none (or only the old key, when the key changed).
ALTER TABLE orders REPLICA IDENTITY FULL;

CREATE TABLE shipments (
    id                 bigserial PRIMARY KEY,
    erp_shipment_id    text UNIQUE,
    order_id           bigint NOT NULL REFERENCES orders (id),
    carrier            text,
    tracking_number    text,
    ship_date          date,
    estimated_delivery date,
    status             text NOT NULL DEFAULT 'pending', -- pending, shipped, delivered
    updated_at         timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE shipments REPLICA IDENTITY FULL;

-- A lookup reads one table by key and cannot chain into a second lookup,
-- so the shipment email reads the order and its customer through a view.
CREATE VIEW order_contacts AS
SELECT o.id AS order_id, o.order_number, c.email, c.first_name
FROM orders o
JOIN customers c ON c.id = o.customer_id;

-- Products, warehouses and stock levels (inventory-fanout.yaml).
CREATE TABLE products (
    sku                       text PRIMARY KEY,
    name                      text NOT NULL,
    reorder_point             integer NOT NULL DEFAULT 0,
    reorder_quantity          integer NOT NULL DEFAULT 0,
    shopify_inventory_item_id bigint          -- null: not sold online
);

CREATE TABLE warehouses (
    code                text PRIMARY KEY,     -- WH-EAST, STORE-12, ...
    name                text NOT NULL,
    shopify_location_id bigint,               -- null: not a Shopify location
    pos_location_id     text                  -- null: not a store
);

CREATE TABLE inventory (
    sku                    text NOT NULL REFERENCES products (sku),
    warehouse              text NOT NULL REFERENCES warehouses (code),
    quantity_on_hand       integer NOT NULL DEFAULT 0,
    quantity_available     integer NOT NULL DEFAULT 0,
    quantity_reserved      integer NOT NULL DEFAULT 0,
    quantity_on_order      integer NOT NULL DEFAULT 0,
    bin_location           text,
    last_count_date        date,
    last_adjustment_type   text,             -- receipt, shipment, adjustment, transfer_in, transfer_out, count
    last_adjustment_source text,             -- erp, ecommerce, pos, wms, app
    updated_at             timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, warehouse)
);
-- The stock alerts and Shopify's compare-and-set read the quantity before
-- the change.
ALTER TABLE inventory REPLICA IDENTITY FULL;

-- The employee directory (employee-directory.yaml): kept in sync with the
-- HR system, which owns hiring and leaving; the app edits phone, desk and
-- title.
CREATE TABLE employees (
    id              serial PRIMARY KEY,
    employee_number text NOT NULL UNIQUE,  -- the HR system's, matched on import
    email           text NOT NULL UNIQUE,
    first_name      text,
    last_name       text,
    department      text,
    title           text,
    manager_number  text,
    phone           text,
    desk            text,
    active          boolean NOT NULL DEFAULT true,
    left_at         timestamptz,           -- set when the HR system deletes the employee
    updated_at      timestamptz NOT NULL DEFAULT now()
);
