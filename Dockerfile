# One image recipe for the three functions, built from the repository root so that the shared package
# goes in. OCI Functions runs GENERIC_X86 (the application's shape in terraform/), so the platform is
# fixed whatever machine builds it:
#   docker build --build-arg FUNCTION=submit -t <region-key>.ocir.io/<ns>/fusion-extract-submit:<tag> .
# What the image must contain, and how `make test` reproduces its runtime: docs/deploy.md.
FROM --platform=linux/amd64 fnproject/python:3.11-dev AS build
ARG FUNCTION
WORKDIR /src
COPY constraints.txt ./
COPY shared ./shared
COPY functions/${FUNCTION}/requirements.txt ./requirements.txt
COPY functions/${FUNCTION}/func.py /function/func.py
COPY tools/prune_oci.py ./
# The oci SDK installs ~500 MB, one package per OCI service; keep the five services the code uses.
# The functions run as uid 1000: every file readable and every folder searchable by all, whatever modes
# the checkout had (the final stage copies both folders from here, modes included).
RUN pip3 install --target /python/ --no-cache-dir -c constraints.txt -r requirements.txt \
 && python3 prune_oci.py /python \
 && chmod -R a+rX /python /function

FROM --platform=linux/amd64 fnproject/python:3.11
COPY --from=build /python /python
COPY --from=build /function /function
ENV PYTHONPATH=/function:/python
ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]
