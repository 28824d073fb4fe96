# digest in a container: `digest serve` by default, or any digest command
# (`docker run … digest deliver --watch`). The project folder (config.yaml, issues/,
# the database) is mounted at /data; secrets come in as environment variables.
FROM python:3.12-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
COPY templates ./templates
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.12-slim
RUN useradd --create-home --uid 10001 digest && mkdir /data && chown digest /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER digest
WORKDIR /data
VOLUME /data
EXPOSE 8026
HEALTHCHECK --interval=30s --timeout=5s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8026/healthz', timeout=3)"]
ENTRYPOINT ["digest"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8026", "--proxy-headers"]
