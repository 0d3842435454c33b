# One image recipe for the three functions, built from the repository root so that the shared package
# goes in: docker build --build-arg FUNCTION=submit -t <region>.ocir.io/<ns>/fusion-extract-submit:<tag> .
FROM fnproject/python:3.11-dev AS build
ARG FUNCTION
WORKDIR /src
COPY constraints.txt ./
COPY shared ./shared
COPY functions/${FUNCTION}/requirements.txt ./requirements.txt
RUN pip3 install --target /python/ --no-cache-dir -c constraints.txt -r requirements.txt

FROM fnproject/python:3.11
ARG FUNCTION
COPY --from=build /python /python
COPY functions/${FUNCTION}/func.py /function/func.py
ENV PYTHONPATH=/function:/python
ENTRYPOINT ["/python/bin/fdk", "/function/func.py", "handler"]
