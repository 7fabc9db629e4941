-- The demo shop database `npm start` backs up: small, but shaped like a real one.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE SCHEMA sales;
CREATE TABLE public.customers (
  id bigserial PRIMARY KEY,
  email text NOT NULL UNIQUE,
  name text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE public.products (
  id serial PRIMARY KEY,
  sku text NOT NULL UNIQUE,
  title text NOT NULL,
  price_cents integer NOT NULL CHECK (price_cents > 0)
);
CREATE TABLE sales.orders (
  id bigserial PRIMARY KEY,
  customer_id bigint NOT NULL REFERENCES public.customers (id),
  placed_at timestamptz NOT NULL,
  status text NOT NULL DEFAULT 'paid'
);
CREATE TABLE sales.order_items (
  order_id bigint NOT NULL REFERENCES sales.orders (id),
  product_id integer NOT NULL REFERENCES public.products (id),
  quantity integer NOT NULL,
  PRIMARY KEY (order_id, product_id)
);
INSERT INTO public.customers (email, name, created_at)
  SELECT 'customer' || g || '@example.com', 'Customer ' || g, timestamptz '2025-01-01' + g * interval '1 hour'
  FROM generate_series(1, 5000) g;
INSERT INTO public.products (sku, title, price_cents)
  SELECT 'SKU-' || lpad(g::text, 5, '0'), 'Product ' || g, 100 + (g * 37) % 9900 FROM generate_series(1, 500) g;
INSERT INTO sales.orders (customer_id, placed_at, status)
  SELECT 1 + g % 5000, timestamptz '2026-01-01' + g * interval '3 minutes', (ARRAY['paid', 'shipped', 'refunded'])[1 + g % 3]
  FROM generate_series(1, 40000) g;
INSERT INTO sales.order_items (order_id, product_id, quantity)
  SELECT o, 1 + (o + k * 167) % 500, 1 + (o + k) % 4 FROM generate_series(1, 40000) o, generate_series(1, 3) k;
CREATE VIEW sales.revenue_by_day AS
  SELECT date_trunc('day', o.placed_at) AS day, sum(i.quantity * p.price_cents) AS cents
  FROM sales.orders o JOIN sales.order_items i ON i.order_id = o.id JOIN public.products p ON p.id = i.product_id
  GROUP BY 1;
ANALYZE;
