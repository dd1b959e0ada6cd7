module web-api

go 1.21
