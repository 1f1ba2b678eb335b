El agua del río está muy fría.
El sol sale por el este.
Compro pan fresco todas las mañanas.
Mi hermana toca el piano.
La luna brilla mucho esta noche.
Hay un árbol viejo en nuestro jardín.
Esta ciudad tiene muchos parques.
Él va al trabajo en bicicleta.
¿Quieres una taza de té?
Hoy está lloviendo.
Los niños están jugando en el parque.
Mi padre trabaja en un hospital.
Cenamos a las siete.
La tienda abre a las nueve.
Ella lee un libro cada semana.
El tren vuelve a llegar tarde.
Estoy aprendiendo un idioma nuevo.
¿Dónde está la estación de tren?
Hoy hace buen tiempo.
Mi hermano vive en una ciudad grande.
Por favor, cierra la ventana.
El perro está durmiendo debajo de la mesa.
En verano vamos al mar.
Este café está demasiado caliente.
No entiendo esta pregunta.
La escuela está cerca de mi casa.
Ella bebe un vaso de agua.
El museo cierra los lunes.
¿Cuánto cuesta esto?
Mi madre cocina muy bien.
Los pájaros cantan en los árboles.
He perdido mis llaves.
La biblioteca tiene miles de libros.
Necesitamos más tiempo.
El profesor está escribiendo en la pizarra.
En invierno hace frío.
Me gusta escuchar música.
El autobús para delante de la escuela.
Plantaron diez árboles el año pasado.
Mi amigo habla tres idiomas.
El río desemboca en el mar.
Hoy es mi cumpleaños.
¿Me puedes ayudar, por favor?
Los sábados el mercado está muy concurrido.
Se lava las manos antes de comer.
Las flores huelen de maravilla.
Te llamaré mañana.
La montaña está cubierta de nieve.
Está escribiendo una carta a su abuela.
Caminamos a lo largo del río.
El bebé está durmiendo.
Este camino lleva al pueblo.
Tengo dos hermanos y una hermana.
Los agricultores necesitan lluvia.
¿Tiene un mapa de la ciudad?
Las estrellas brillan en el cielo.
Él mismo arregló su bicicleta.
A la sopa le falta sal.
Nuestros vecinos son muy amables.
Buenas noches y que duermas bien.
