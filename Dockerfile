# One image, one binary: every role of the fleet is a `backfill` subcommand. curl is
# there for the health checks of /healthz and /readyz.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin backfill

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 backfill
COPY --from=build /src/target/release/backfill /usr/local/bin/backfill
USER backfill
ENTRYPOINT ["backfill"]
EXPOSE 9464
