-- The demo database `lifeboat run <mysql source> --local` backs up when no target is given.
CREATE DATABASE IF NOT EXISTS shop CHARACTER SET utf8mb4;
USE shop;
CREATE TABLE customers (id INT AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL UNIQUE, name VARCHAR(100) NOT NULL) ENGINE=InnoDB;
INSERT INTO customers (email, name) SELECT CONCAT('customer', seq, '@example.com'), CONCAT('Customer ', seq) FROM seq_1_to_5000;
CREATE TABLE orders (id BIGINT AUTO_INCREMENT PRIMARY KEY, customer_id INT NOT NULL, cents INT NOT NULL,
  CONSTRAINT orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)) ENGINE=InnoDB;
INSERT INTO orders (customer_id, cents) SELECT 1 + seq % 5000, 100 + seq % 9000 FROM seq_1_to_40000;
