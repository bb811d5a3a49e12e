# One image with every Bazaar binary; compose.yaml picks the command.
#   docker build -t bazaar .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/product-svc target/release/checkout-svc target/release/warehouse-svc \
       target/release/finance-svc target/release/edge-api target/release/bazaar /out/

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /var/lib/bazaar --create-home bazaar
COPY --from=build /out/ /usr/local/bin/
USER bazaar
WORKDIR /var/lib/bazaar
ENV BAZAAR_DATA_DIR=/var/lib/bazaar BAZAAR_LOG_FORMAT=json
