-- One database per service: no service can read another's tables.
CREATE DATABASE product;
CREATE DATABASE checkout;
CREATE DATABASE warehouse;
CREATE DATABASE finance;
CREATE DATABASE edge;
