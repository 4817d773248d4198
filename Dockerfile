# The redwasm host with every component, built from this repository.
FROM rust:1-bookworm AS build
RUN rustup target add wasm32-wasip2
WORKDIR /src
COPY . .
RUN cargo build --release -p redwasm-host --bin redwasm

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /src/target/release/redwasm /usr/local/bin/redwasm
COPY --from=build /src/target/wasm/wasm32-wasip2/release/*.wasm /app/target/wasm/wasm32-wasip2/release/
COPY spin.toml /app/spin.toml
EXPOSE 3000
ENTRYPOINT ["redwasm", "serve", "--manifest", "/app/spin.toml", "--listen", "0.0.0.0:3000"]
