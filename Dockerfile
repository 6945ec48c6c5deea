# groundtruth in a container, built from this repository alone (nothing outside the checkout):
#
#   docker build -t groundtruth .                       # the small runtime image
#   docker run --rm groundtruth                         # `groundtruth run --suite smoke`
#   docker run --rm -v "$PWD:/data" groundtruth check --model /data/my.gguf --oracle /data/oracle.json
#
#   docker build --target test -t groundtruth-test .   # toolchain, real model, Chromium
#   docker run --rm groundtruth-test                    # the whole test suite (.ci/run)

# 1. Build the binary. The claims, suites, configs, oracles, corpus and oracle scripts are
#    built into it (build.rs), so it needs nothing else at run time.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin groundtruth

# 2. The tests, as CI runs them: Python to fetch the real model, Chromium for the
#    report page test (CI=true makes it mandatory).
FROM build AS test
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-pip chromium \
 && rm -rf /var/lib/apt/lists/*
RUN cargo test --release --locked --no-run
# Fetched at build time so the image runs the real-model claims offline.
RUN PIP_BREAK_SYSTEM_PACKAGES=1 ci/fetch-models.sh
# As .ci/run: no skip but "no device" may pass, and no test may return early on a missing file.
ENV GROUNDTRUTH_FORBID_SKIP=1 CI=true
CMD ["cargo", "test", "--release", "--locked"]

# 3. The runtime image: the binary, plus the project's claims and oracles as plain files
#    (a project at /opt/groundtruth, marked by its groundtruth.toml) to read or extend.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/groundtruth /usr/local/bin/groundtruth
COPY --from=build /src/groundtruth.toml /opt/groundtruth/groundtruth.toml
COPY --from=build /src/claims /opt/groundtruth/claims
COPY --from=build /src/suites /opt/groundtruth/suites
COPY --from=build /src/configs /opt/groundtruth/configs
COPY --from=build /src/oracles /opt/groundtruth/oracles
COPY --from=build /src/data /opt/groundtruth/data
COPY --from=build /src/models /opt/groundtruth/models
COPY --from=build /src/tests/fixtures/quant-ref /opt/groundtruth/tests/fixtures/quant-ref
COPY --from=build /src/ci /opt/groundtruth/ci
COPY --from=build /src/docs /opt/groundtruth/docs
WORKDIR /opt/groundtruth
ENTRYPOINT ["groundtruth"]
CMD ["run", "--suite", "smoke"]
