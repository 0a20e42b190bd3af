module blogplatform/kong/apikey_auth_plugin

go 1.26

require (
	github.com/Kong/go-pdk v0.11.2
	gopkg.in/yaml.v3 v3.0.1
)

require (
	github.com/ugorji/go/codec v1.2.14 // indirect
	google.golang.org/protobuf v1.36.2 // indirect
)
