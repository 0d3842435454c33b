# One image recipe for the three functions, built from the repository root so that the shared package
# goes in. OCI Functions runs GENERIC_X86 (the application's shape in terraform/), so the platform is
# fixed whatever machine builds it:
#   docker build --build-arg FUNCTION=submit -t <region-key>.ocir.io/<ns>/fusion-extract-submit:<tag> .
FROM --platform=linux/amd64 fnproject/python:3.11-dev AS build
ARG FUNCTION
WORKDIR /src
COPY constraints.txt ./
COPY shared ./shared
COPY functions/${FUNCTION}/requirements.txt ./requirements.txt
COPY tools/prune_oci.py ./
# The oci SDK installs ~500 MB, one package per OCI service; keep the five services the code uses.
RUN pip3 install --target /python/ --no-cache-dir -c constraints.txt -r requirements.txt \
 && python3 prune_oci.py /python

FROM --platform=linux/amd64 fnproject/python:3.11
ARG FUNCTION
COPY --from=build /python /python
COPY functions/${FUNCTION}/func.py /function/func.py
ENV PYTHONPATH=/function:/python
ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]
